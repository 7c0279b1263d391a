"""How every handler reports an error: one line for the visitor, the outputs left as they were.

    @shows_errors(outputs=4)           # the message goes to the last output
    def embed(text, pooling, choice, session): ...

A user error (an MTLError, such as UIError) is shown as it is. Anything else is a bug or a damaged
file: its traceback goes to the server's log and the visitor reads that something went wrong.
Pop-ups go through notify: Gradio renders a warning's text as HTML, and a message may quote what a
visitor typed (a model name), so it is escaped and shown as text."""

import functools
import html
import inspect

import gradio as gr

from mtl.errors import MTLError

from .context import log_exception, md_escape


def notify(message: str) -> None:
    """A gr.Warning pop-up that shows `message` as text: any markup in it is escaped, never rendered."""
    gr.Warning(html.escape(str(message), quote=False))


def user_message(error: Exception) -> str:
    """The line a visitor reads for `error`: a user error as it is; anything else (a bug) as a note
    that something went wrong, its traceback in the server's log (call it in the `except` block)."""
    if isinstance(error, MTLError):
        return str(error)
    log_exception("handling a request")
    return f"Something went wrong ({type(error).__name__}); the app keeps running. The details are in its log."


def warn(error: Exception) -> str:
    """Show `error` as a one-line pop-up (notify); returns it as Markdown ("⚠ ...") for a status box."""
    message = user_message(error)
    notify(message)
    return f"⚠ {md_escape(message)}"


def shows_errors(outputs: int = 1, message: int = -1):
    """Decorate a Gradio handler that has `outputs` outputs: when it raises, warn, put "⚠ ..." in the
    output at index `message` and keep every other output (gr.skip()). Generators (streaming
    handlers) stay generators: the error becomes their last update."""

    def on_error(error: Exception):
        if outputs == 1:
            return warn(error)
        values = [gr.skip()] * outputs
        values[message] = warn(error)
        return tuple(values)

    def decorate(handler):
        # functools.wraps keeps the signature and annotations Gradio reads (gr.Request, gr.State inputs)
        if inspect.isgeneratorfunction(handler):

            @functools.wraps(handler)
            def streaming(*args, **kwargs):
                try:
                    yield from handler(*args, **kwargs)
                except Exception as e:
                    yield on_error(e)

            return streaming

        @functools.wraps(handler)
        def plain(*args, **kwargs):
            try:
                return handler(*args, **kwargs)
            except Exception as e:
                return on_error(e)

        return plain

    return decorate
