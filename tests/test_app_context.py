"""What every tab shares (mtl_app/context.py): sessions, the model picker's choices, model info."""

import copy

import pytest
from app_helpers import make_context

from mtl_app.context import SESSION_MODEL, Session, UIError


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return make_context(tmp_path_factory.mktemp("saved"), update_seconds=0)  # every step an update


def test_a_copied_session_is_a_new_empty_session():
    s = Session()
    s.model, s.run = object(), {"steps": 3}
    c = copy.deepcopy(s)
    assert c.model is None and c.run is None and c.stop is not s.stop and not c.running


def test_choices_and_resolve(ctx):
    s = Session()
    assert [v for _, v in ctx.choices(s)] == ["default"]
    assert ctx.resolve("default", s)[0] is ctx.default_model
    with pytest.raises(UIError, match="no trained model"):
        ctx.resolve(SESSION_MODEL, s)
    with pytest.raises(UIError, match="not a model name"):
        ctx.resolve("../checkpoints/default", s)
    with pytest.raises(UIError, match="no saved model"):
        ctx.resolve("nothing-here", s)
    s.model = object()
    assert ctx.choices(s)[-1] == (SESSION_MODEL, SESSION_MODEL)
    assert ctx.resolve(SESSION_MODEL, s)[0] is s.model


def test_model_info_names_the_model_and_its_accuracy(ctx):
    info = ctx.model_info("default", Session())
    assert "shipped model" in info and "Validation accuracy: topic" in info


def test_an_evicted_session_model_is_freed_at_once_not_by_the_garbage_collector(ctx):
    """Memory comes back the moment a session's model is released (no reference cycle keeps its
    weights until the collector happens to run): the weights are gone right after eviction."""
    import collections
    import dataclasses
    import gc
    import weakref

    from app_helpers import BACKBONE

    from mtl_app import train_run

    one = ctx.with_limits(dataclasses.replace(ctx.limits, session_models=1))
    a, b = Session(), Session()

    def train(session, frozen):
        updates = train_run.run_training(one, session, "default", "pretrained", frozen, 1, 8, 5e-5, 5e-3, "joint", 64)
        collections.deque(updates, maxlen=0)

    gc.collect()
    gc.disable()
    try:
        train(a, BACKBONE[:5])  # layers 4-5 and the heads train
        weights = [weakref.ref(p) for p in a.model.parameters()]
        train(b, BACKBONE)
        assert a.model is None and a.released
        assert sum(w() is not None for w in weights) == 0
    finally:
        gc.enable()


def test_training_admission_takes_turns_and_refuses_beyond_its_bound():
    import threading
    import types

    from mtl_app.admission import UNREAD_UPDATES, Listener, TrainingGate, TrainingRefused

    gate = TrainingGate(slots=1)
    a, b, c = Session(), Session(), Session()
    first, second = gate.admit(a), gate.admit(b, "sweep")
    assert gate.capacity == 2 and (first.ahead(), second.ahead()) == (0, 1)
    with pytest.raises(TrainingRefused, match="already has a sweep"):
        gate.admit(b)  # one place per session, whatever it runs
    with pytest.raises(TrainingRefused, match="busy: 2 training runs"):
        gate.admit(c)
    stop = threading.Event()
    waiting = second.waiting(stop, tick=0.01)
    assert next(waiting) == 1  # its place, once a tick, while it waits
    first.release()
    assert list(waiting) == [] and second.ahead() == 0  # its turn
    with gate.admit(c) as third:  # the released place is free again
        assert third.ahead() == 1
    assert gate.tickets() == [second]

    # a waiting run whose updates nobody reads is dropped before it starts; one read late is kept
    def visitor(*unread, seconds=60.0):
        piles = iter(unread)
        queue = types.SimpleNamespace(qsize=lambda: next(piles))
        blocks = types.SimpleNamespace(_queue=types.SimpleNamespace(pending_messages_per_session={"v": queue}))
        app = types.SimpleNamespace(get_blocks=lambda: blocks)
        return Listener(types.SimpleNamespace(session_hash="v", request=types.SimpleNamespace(app=app)), seconds)

    ghost = gate.admit(c)
    assert len(list(ghost.waiting(stop, visitor(*range(1, 100)), tick=0.01))) == UNREAD_UPDATES - 1
    assert ghost.abandoned and gate.tickets() == [second]
    late = visitor(3, 4, 2, *range(UNREAD_UPDATES, 100))  # four behind, then it catches up: it listens
    assert not any(late.gone() for _ in range(20)) and late.heard
    assert visitor(1, 1, 0).confirmed(poll=0.01)  # a page: its pile empties at once
    assert not visitor(*[2] * 100, seconds=0.05).confirmed(poll=0.01)  # a script: nothing ever read
    assert not Listener(None).gone() and Listener(None).confirmed()  # called directly (no request): kept


def test_the_picker_says_whose_saved_model_it_is(ctx, tmp_path):
    from mtl_app.context import PUBLIC_LIMITS

    pub = ctx.with_limits(PUBLIC_LIMITS)
    for name in ("mine", "theirs", "shipped-here"):
        (ctx.saved_dir / name).mkdir()
        (ctx.saved_dir / name / "mtl.json").write_text("{}")
    me, them = Session(), Session()
    pub.note_saved(me, "mine")
    pub.note_saved(them, "theirs")
    labels = dict((v, label) for label, v in pub.choices(me))
    assert labels["mine"] == "mine (saved by you)" and labels["theirs"] == "theirs (saved by a visitor)"
    assert labels["shipped-here"] == "shipped-here"  # in the folder before the app started
    assert dict((v, label) for label, v in ctx.choices(me))["theirs"] == "theirs"  # locally: your own machine
    pub.forget_saved(me, "mine")
    assert me.saved == []
    for name in ("mine", "theirs", "shipped-here"):
        import shutil

        shutil.rmtree(ctx.saved_dir / name)


def test_the_train_tab_draws_on_every_register_and_public_validation_is_a_sample_of_all(tmp_path):
    """The Train tab trains on what the shipped model trained on (v1 + v2, all seven registers);
    a public demo checks accuracy on a fixed random sample of the validation split, not its first
    rows (which would be one register), and the local app on all of it."""
    from mtl.data import load_labelled
    from mtl_app.context import DATA_DIR, LOCAL_LIMITS, PUBLIC_LIMITS, AppContext

    full_val = load_labelled(DATA_DIR / "val.csv")
    local = AppContext(saved_dir=tmp_path, device="cpu")
    public = AppContext(saved_dir=tmp_path, device="cpu", public=True)
    train, val = local.training_data()
    assert len(train.group_indices()) == 7 and "crafted" in train.group_indices()
    assert val.texts == full_val.texts
    _, sample = public.training_data()
    assert len(sample) == PUBLIC_LIMITS.val_sentences < len(full_val)
    assert set(sample.group_indices()) == set(full_val.group_indices())
    assert set(sample.texts) <= set(full_val.texts)
    again = AppContext(saved_dir=tmp_path, device="cpu", public=True)
    assert again.training_data()[1].texts == sample.texts  # the same sample every time
    assert local.with_limits(PUBLIC_LIMITS).training_data()[1].texts == sample.texts
    assert public.with_limits(LOCAL_LIMITS).training_data()[1].texts == full_val.texts
