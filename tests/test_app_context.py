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
