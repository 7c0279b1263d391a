"""Everything passed to demo.launch: the look (theme, CSS), the files Gradio may serve, and a limit on
request bodies enforced before Gradio parses them. demo.launch(**launch_options(), ...)."""

import os
import tempfile
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from .context import ROOT
from .text import CSS

THEME = gr.themes.Soft(
    primary_hue="indigo",
    secondary_hue="sky",
    neutral_hue="slate",
    font=["Inter", "ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
)
MAX_REQUEST_BYTES = 2_000_000  # the longest text box (200,000 characters) as JSON, with room to spare


def blocked_paths() -> list[str]:
    """Gradio serves only its own upload and cache folders (allowed_paths stays empty). The project folder
    is blocked too, so no setting can ever expose the code, the data or the checkpoints; where Gradio's
    folder lies inside the project (GRADIO_TEMP_DIR), its sensitive subfolders are blocked instead."""
    root = ROOT.resolve()
    cache = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()
    if cache == root or root in cache.parents:
        return [str(root / d) for d in ("checkpoints", "data", "mtl", "mtl_app", "tests", "bench", ".git")]
    return [str(root)]


class BodyLimit:
    """ASGI middleware: refuses request bodies over `limit` bytes (413) before Gradio parses them, so one
    API call cannot make the server read megabytes of JSON. File uploads have their own cap (max_file_size)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].endswith("/upload"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"text/plain")]})
            return await send({"type": "http.response.body", "body": b"Request body too large"})
        seen = 0

        async def counted():  # a body sent in chunks without a length is cut off at the limit too
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            return {"type": "http.disconnect"} if seen > self.limit else message

        return await self.app(scope, counted, send)


LAUNCH_OPTIONS = {
    "theme": THEME,
    "css": CSS,
    "footer_links": ["api"],
    "max_file_size": "5mb",
    "allowed_paths": [],
    "blocked_paths": blocked_paths(),
}


def launch_options() -> dict:
    """LAUNCH_OPTIONS plus the request-size limit (a fresh dict each time: Gradio adds to app_kwargs at
    every launch)."""
    return {**LAUNCH_OPTIONS, "app_kwargs": {"middleware": [Middleware(BodyLimit, limit=MAX_REQUEST_BYTES)]}}
