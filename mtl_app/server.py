"""Everything passed to demo.launch: the look (theme, CSS), the files Gradio may serve, and limits on
requests enforced as a request arrives, before Gradio parses it or writes a byte to disk: how often
one address may call (rates.py), body sizes by exact route, and uploads.
demo.launch(**launch_options(ctx.limits), ...)."""

import dataclasses
import os
import tempfile
import time
from collections import deque
from pathlib import Path

import gradio as gr
from gradio.route_utils import API_PREFIX
from gradio.utils import get_upload_folder
from starlette.middleware import Middleware

from .context import LOCAL_LIMITS, PUBLIC_LIMITS, ROOT, Limits
from .rates import Buckets
from .text import CSS

THEME = gr.themes.Soft(
    primary_hue="indigo",
    secondary_hue="sky",
    neutral_hue="slate",
    font=["Inter", "ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
)
MAX_REQUEST_BYTES = 2_000_000  # the longest text box (200,000 characters) as JSON, with room to spare
UPLOAD_ROUTE = f"{API_PREFIX}/upload"  # Gradio 6's one upload route (POST, gradio/routes.py); exact path
# Gradio's screen-recording route runs ffmpeg on a visitor's video (minutes of CPU for a small, long
# video); nothing in this app records the screen, so the route is closed
CLOSED_ROUTES = (f"{API_PREFIX}/process_recording",)
MULTIPART_BYTES = 16_384  # an upload's form headers and boundaries, beside the files themselves


@dataclasses.dataclass(frozen=True)
class UploadLimits:
    """What the upload route takes, checked as each upload arrives: per request, per client address
    (uvicorn's, which honours X-Forwarded-For from a trusted proxy: FORWARDED_ALLOW_IPS) and for
    everyone together, over a sliding `window`. Uploads are deleted once read (discard_upload) and
    Gradio removes any left after an hour (delete_cache), so the window's total bounds the disk."""

    file_bytes: int  # one file (Gradio's max_file_size too)
    files_per_request: int = 1  # each upload box of this app takes one file
    client_files: int = 60  # uploads per client address per window
    client_bytes: int = 6_000_000  # bytes uploaded per client address per window
    total_files: int = 2_000  # uploads from all clients per window
    total_bytes: int = 200_000_000  # bytes from all clients per window
    window: float = 3600.0  # seconds, as long as Gradio keeps a file

    @property
    def request_bytes(self) -> int:
        return self.files_per_request * self.file_bytes + MULTIPART_BYTES

    @classmethod
    def for_limits(cls, limits: Limits) -> "UploadLimits":
        """Files of limits.upload_bytes. Public: the defaults (per hour 60 uploads / 6 MB per address,
        2,000 / 200 MB in all); local: 300 uploads / 100 MB per address, 5,000 / 1 GB in all."""
        if limits is PUBLIC_LIMITS:
            return cls(file_bytes=limits.upload_bytes)
        return cls(limits.upload_bytes, client_files=300, client_bytes=10**8, total_files=5_000, total_bytes=10**9)


class UploadLog:
    """Uploads accepted in the last `window` seconds, per client and in all: (time, files, bytes)."""

    def __init__(self, limits: UploadLimits):
        self.limits = limits
        self._clients: dict[str, deque] = {}
        self._all: deque = deque()

    def _prune(self, log: deque, now: float) -> tuple[int, int]:
        while log and log[0][0] <= now - self.limits.window:
            log.popleft()
        return sum(f for _, f, _ in log), sum(b for _, _, b in log)

    def refuse(self, client: str, files: int, size: int, count: bool = True) -> tuple[int, str] | None:
        """(status, reason) when this upload would go over a limit; None (and, with `count`, it is
        counted) if not."""
        lim, now = self.limits, time.monotonic()
        if files > lim.files_per_request:
            return 413, f"At most {lim.files_per_request} file(s) per upload."
        all_files, all_bytes = self._prune(self._all, now)
        if all_files + files > lim.total_files or all_bytes + size > lim.total_bytes:
            return 503, "The server takes no more uploads for now; try again later."
        log = self._clients.setdefault(client, deque())
        client_files, client_bytes = self._prune(log, now)
        if client_files + files > lim.client_files or client_bytes + size > lim.client_bytes:
            return 429, (
                f"Upload limit reached: {lim.client_files} files or {lim.client_bytes:,} bytes per "
                f"{lim.window / 60:.0f} minutes from one address; try again later."
            )
        if not count:
            return None
        for entries in (log, self._all):
            entries.append((now, files, size))
        if len(self._clients) > lim.total_files:  # forget the addresses whose uploads have all expired
            self._clients = {k: v for k, v in self._clients.items() if self._prune(v, now)[0]}
        return None


def route(scope) -> str:
    """The request's path inside the app (without the prefix it is mounted under, if any)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def refuse(send, status: int, reason: str, headers: list | None = None) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": reason.encode()})


async def read_body(receive, limit: int) -> bytes | None:
    """The whole request body, or None once it runs over `limit` bytes (the rest is not read)."""
    chunks, seen = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        seen += len(chunks[-1])
        if seen > limit:
            return None
        if not message.get("more_body"):
            return b"".join(chunks)


def form_parts(headers: dict, body: bytes) -> int:
    """How many parts (files and fields) a multipart/form-data body holds: its boundaries, less one."""
    content_type = headers.get(b"content-type", b"").decode("latin-1")
    boundary = next((p.strip()[9:] for p in content_type.split(";") if p.strip().startswith("boundary=")), "")
    boundary = boundary.strip('"').encode("latin-1")
    return max(0, body.count(b"--" + boundary) - 1) if boundary else 0


def client_address(scope) -> str:
    """The client's address as uvicorn saw it (from X-Forwarded-For when the peer is a trusted proxy)."""
    return (scope.get("client") or ("unknown",))[0]


class RequestLimits:
    """ASGI middleware, before Gradio reads a byte. Per client address, requests of any kind and events
    (every POST but an upload: predictions, runs, cancels) are rate-limited (Limits.request_rate and
    event_rate; 429 with Retry-After). Every request body is limited by its exact route: the upload
    route (UPLOAD_ROUTE, POST) takes one request's files (UploadLimits: how many, how big, how often
    from one address); every other route at most `limit` bytes (413), however its path ends."""

    def __init__(self, app, limit: int, uploads: UploadLimits | None = None, limits: Limits = LOCAL_LIMITS):
        self.app, self.limit = app, limit
        self.uploads = UploadLog(uploads or UploadLimits.for_limits(limits))
        self.requests, self.events = Buckets(limits.request_rate), Buckets(limits.event_rate)

    async def too_often(self, scope, send, path: str) -> bool:
        """Answer 429 (and say so) when this address is over its rate of requests or of events."""
        client, upload = client_address(scope), path == UPLOAD_ROUTE
        for buckets, kind in ((self.requests, "requests"), (self.events, "actions")):
            if buckets is self.events and (scope["method"] != "POST" or upload):
                continue
            if not buckets.take(client):
                wait = buckets.retry_after(client)
                reason = f"Too many {kind} from your address; try again in {wait} s."
                await refuse(send, 429, reason, [(b"retry-after", str(wait).encode())])
                return True
        return False

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers, path = dict(scope["headers"]), route(scope)
        if await self.too_often(scope, send, path):
            return
        if path in CLOSED_ROUTES:
            return await refuse(send, 403, "Not available in this app")
        if scope["method"] == "POST" and path == UPLOAD_ROUTE:
            return await self.upload(scope, headers, receive, send)
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            return await refuse(send, 413, "Request body too large")
        seen = 0

        async def counted():  # a body sent in chunks without a length is cut off at the limit too
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            return {"type": "http.disconnect"} if seen > self.limit else message

        return await self.app(scope, counted, send)

    async def upload(self, scope, headers, receive, send):
        """Read the upload whole (it is small), count its files, then hand it to Gradio, or refuse it.
        An address already over its quota is refused before a byte of the body is read."""
        limit, client = self.uploads.limits.request_bytes, client_address(scope)
        length = headers.get(b"content-length", b"0")
        too_big = f"An upload is at most {self.uploads.limits.file_bytes:,} bytes."
        if not length.isdigit() or int(length) > limit:
            return await refuse(send, 413, too_big)
        refused = self.uploads.refuse(client, 1, int(length), count=False)
        if refused:
            return await refuse(send, *refused)
        body = await read_body(receive, limit)
        if body is None:
            return await refuse(send, 413, too_big)
        refused = self.uploads.refuse(client, form_parts(headers, body), len(body))
        if refused:
            return await refuse(send, *refused)
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()  # after the body: wait for the client to go
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


def discard_upload(path) -> None:
    """Delete an uploaded file once the app has read it (and its folder, named after its hash, when
    empty). Only inside Gradio's upload folder: never a file from anywhere else."""
    if not isinstance(path, (str, os.PathLike)):
        return
    folder, path = Path(get_upload_folder()).resolve(), Path(path).resolve()
    if folder not in path.parents:
        return
    path.unlink(missing_ok=True)
    if path.parent != folder and not any(path.parent.iterdir()):
        path.parent.rmdir()


def blocked_paths() -> list[str]:
    """Gradio serves only its own upload and cache folders (allowed_paths stays empty). The project folder
    is blocked too, so no setting can ever expose the code, the data or the checkpoints; where Gradio's
    folder lies inside the project (GRADIO_TEMP_DIR), its sensitive subfolders are blocked instead."""
    root = ROOT.resolve()
    cache = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()
    if cache == root or root in cache.parents:
        return [str(root / d) for d in ("checkpoints", "data", "mtl", "mtl_app", "tests", "bench", ".git")]
    return [str(root)]


LAUNCH_OPTIONS = {
    "theme": THEME,
    "css": CSS,
    "footer_links": ["api"],
    "allowed_paths": [],
    "blocked_paths": blocked_paths(),
}


def launch_options(limits: Limits = LOCAL_LIMITS) -> dict:
    """LAUNCH_OPTIONS plus the limits on requests, rates and uploads for `limits` (ctx.limits). A
    fresh dict each time: Gradio adds to app_kwargs at every launch."""
    uploads = UploadLimits.for_limits(limits)
    middleware = Middleware(RequestLimits, limit=MAX_REQUEST_BYTES, uploads=uploads, limits=limits)
    return {**LAUNCH_OPTIONS, "max_file_size": uploads.file_bytes, "app_kwargs": {"middleware": [middleware]}}
