"""How the app gives memory back: a released model is freed at once, and what a run freed goes back
to the system (bench/memory.py measures both)."""

import ctypes
import functools
import sys


def freed_when_dropped(model):
    """`model`, with the one reference cycle it carries broken: sentence-transformers' model card points
    back at its encoder, so without this a released model (weights, moments, cached features) waits for
    the garbage collector instead of being freed the moment its last reference goes. The card is only
    used to write a sentence-transformers model card, which the app never does."""
    card = getattr(getattr(model, "encoder", None), "model_card_data", None)
    if card is not None and getattr(card, "model", None) is not None:
        card.model = None
    return model


def return_free_memory() -> None:
    """Hand memory the process has freed back to the system (glibc's malloc_trim; elsewhere nothing).
    A training run allocates and frees a few hundred MiB (activations, optimizer moments, the cached
    features, the base model read from disk); glibc keeps freed heap pages, so without this each run
    leaves the process larger (bench/memory.py)."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


@functools.cache
def _libc():
    try:
        return ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else None
    except OSError:  # not glibc (musl, ...)
        return None
