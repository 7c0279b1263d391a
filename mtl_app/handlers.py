"""How every handler reports an error: one line for the visitor, the outputs left as they were.

    @shows_errors(outputs=4)           # the message goes to the last output
    def embed(text, pooling, choice, session): ...

A user error (an MTLError, such as UIError) is shown as it is. Anything else is a bug or a damaged
file: its traceback goes to the server's log and the visitor reads that something went wrong."""

import functools
import inspect

import gradio as gr

from mtl.errors import MTLError

from .context import log_exception, md_escape


def warn(error: Exception) -> str:
    """Show `error` as a one-line gr.Warning; returns it as Markdown ("⚠ ...") for a status box."""
    if not isinstance(error, MTLError):
        log_exception("handling a request")
        error = f"Something went wrong ({type(error).__name__}); the app keeps running. The details are in its log."
    gr.Warning(str(error))
    return f"⚠ {md_escape(str(error))}"


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
