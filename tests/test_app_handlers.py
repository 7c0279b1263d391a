"""The one error rule every handler follows (mtl_app/handlers.py): a message in the status output, the
other outputs kept, a user error shown as it is and a bug as a one-line note (its traceback in the log)."""

import inspect

import gradio as gr
import pytest

from mtl_app.context import UIError
from mtl_app.handlers import notify, shows_errors

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # gr.Warning outside a request only warns


def is_skip(value) -> bool:
    return value == gr.skip()


def test_a_user_error_goes_to_the_message_output_and_the_others_are_kept():
    @shows_errors(outputs=3, message=0)
    def handler(text):
        raise UIError("Type a sentence *first*.")

    message, *rest = handler("x")
    assert message == "⚠ Type a sentence \\*first\\*." and all(is_skip(v) for v in rest)


def test_one_output_is_the_message_itself_and_success_passes_through():
    @shows_errors()
    def handler(fail):
        if fail:
            raise UIError("no")
        return "fine"

    assert handler(False) == "fine" and handler(True) == "⚠ no"


def test_a_bug_is_a_one_line_message_and_its_traceback_goes_to_the_log(capsys):
    @shows_errors(outputs=2)
    def handler():
        raise KeyError("secret detail")

    skipped, message = handler()
    assert is_skip(skipped) and "Something went wrong (KeyError)" in message and "secret" not in message
    assert "secret detail" in capsys.readouterr().err


def test_a_streaming_handler_stays_a_generator_and_ends_with_the_message():
    @shows_errors(outputs=2, message=0)
    def handler(n, request: gr.Request):
        yield "step 1", 1
        raise UIError(f"stopped at {n}")

    assert inspect.isgeneratorfunction(handler)
    assert "request" in inspect.signature(handler).parameters  # Gradio still passes the gr.Request
    updates = list(handler(2, None))
    assert updates[0] == ("step 1", 1) and updates[1][0] == "⚠ stopped at 2" and is_skip(updates[1][1])


def test_a_pop_up_shows_markup_from_a_visitor_as_text(monkeypatch):
    shown = []
    monkeypatch.setattr(gr, "Warning", shown.append)

    @shows_errors(outputs=2)
    def handler(choice):
        raise UIError(f"{choice!r} is not a model name.")

    _, status = handler("<img src=x onerror=alert(1)><b>x</b>")
    assert shown == ["'&lt;img src=x onerror=alert(1)&gt;&lt;b&gt;x&lt;/b&gt;' is not a model name."]
    assert "'\\<img src=x onerror=alert(1)\\>\\<b\\>x\\</b\\>'" in status  # Markdown escaped: shown as text
    notify("a & b < c")
    assert shown[-1] == "a &amp; b &lt; c"
