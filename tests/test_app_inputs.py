"""The one type check every handler runs on what a visitor sent (mtl_app/inputs.py: expect)."""

import pytest

from mtl_app.context import UIError
from mtl_app.inputs import KINDS, clean_sentence, expect


@pytest.mark.parametrize(
    "value, kind, message",
    [
        (5, "text", "The input must be text, not a number."),
        ([1, 2], "text", "The input must be text, not a list."),
        ({"a": 1}, "text", "The input must be text, not an object."),
        (True, "text", "The input must be text, not true/false."),
        (None, "text", "The input must be text, not nothing."),
        ("3", "number", "The input must be a number, not text."),
        (True, "number", "The input must be a number, not true/false."),  # Python's bool is an int: refused
        (2.5, "whole number", "The input must be a whole number, not 2.5."),
        (float("nan"), "whole number", "The input must be a whole number, not nan."),
        ("layer.0", "list of text", "The input must be a list of text, not text."),
        (["layer.0", 1], "list of text", "The input must be a list of text; one item is a number."),
        ([None], "list of text", "The input must be a list of text; one item is nothing."),
        ("yes", "true/false", "The input must be true or false, not text."),
        (1, "true/false", "The input must be true or false, not a number."),
    ],
)
def test_a_value_of_the_wrong_type_gets_a_one_line_message(value, kind, message):
    with pytest.raises(UIError) as e:
        expect(value, kind, "The input")
    assert str(e.value) == message


def test_a_value_of_the_right_type_comes_back():
    assert expect("default", "text", "x") == "default"
    assert expect(3.0, "whole number", "x") == 3 and isinstance(expect(3.0, "whole number", "x"), int)
    assert expect(0.5, "number", "x") == 0.5 and expect(2, "number", "x") == 2
    assert expect(("a", "b"), "list of text", "x") == ["a", "b"] and expect([], "list of text", "x") == []
    assert expect(False, "true/false", "x") is False
    assert all(expect(None, kind, "x", optional=True) is None for kind in KINDS)
    with pytest.raises(ValueError, match="kind must be one of text, number"):
        expect(1, "integer", "x")


@pytest.mark.parametrize("text", [5, ["a sentence"], {"text": "a sentence"}])
def test_a_sentence_that_is_not_text_is_refused(text):
    with pytest.raises(UIError, match="The sentence must be text"):
        clean_sentence(text)
