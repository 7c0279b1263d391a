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
