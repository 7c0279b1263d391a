"""Shared by the app tests: a context on the shipped model that saves into a temporary folder and
validates on a slice of data/val.csv (fast), and the app launched on a free local port."""

import socket
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

VAL_ROWS = 48  # validation sentences per evaluation in tests (the app uses all 336)
BACKBONE = ["embeddings", *[f"layer.{i}" for i in range(6)]]


def make_context(saved_dir, update_seconds=0.25):
    from mtl_app.context import DEFAULT_CHECKPOINT, AppContext

    return AppContext(
        DEFAULT_CHECKPOINT, saved_dir=saved_dir, device="cpu", val_rows=VAL_ROWS, update_seconds=update_seconds
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(ctx, training_slots: int = 1):
    """(demo, url): the app serving in this process, launched as app.py does; call demo.close() when done."""
    import app
    from mtl_app.server import launch_options

    demo = app.build_demo(ctx, training_slots=training_slots)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    return demo, f"http://127.0.0.1:{port}/"
