"""Sentences in batches for a forward pass: the one place that orders, tokenizes and places them.

Text is tokenized once, in chunks of CHUNK sentences (one tokenizer call each, padded to the chunk's
longest); each chunk is sorted by token count and cut into batches, each trimmed to its own longest
sentence, so batches pad little without tokenizing twice (counting tokens first, then tokenizing
each batch, did). On a GPU the next batches are prepared in a background thread while the current
one runs, and go to the device from pinned memory without blocking; on a CPU both would share the
same cores, so it is done in turn.
"""

import queue
import threading
from collections.abc import Iterator

import numpy as np
import torch

CHUNK = 4096  # sentences per tokenizer call; sorted by length within it (a few MB of token ids)
PREFETCH = 2  # batches prepared ahead of the one running (GPU)


def tokenize(encoder, sentences: list[str], device, pin: bool = False) -> dict:
    """Pad to the longest sentence (dynamic padding), truncate to max_seq_length; on `device` (from
    pinned memory, without blocking, with `pin`)."""
    features = encoder.preprocess(list(sentences))
    return {k: _place(v, device, pin) if isinstance(v, torch.Tensor) else v for k, v in features.items()}


def _place(t: torch.Tensor, device, pin: bool) -> torch.Tensor:
    return t.pin_memory().to(device, non_blocking=True) if pin else t.to(device)


def place(t: torch.Tensor, device) -> torch.Tensor:
    """`t` on `device`; to a GPU from pinned memory, without making the host wait."""
    return _place(t, device, torch.device(device).type == "cuda")


def batches(encoder, sentences: list[str], batch_size: int, device, prefetch: bool | None = None) -> Iterator:
    """(indices into `sentences`, features on `device`) per batch, longest first within each chunk.
    `prefetch` (default: on CUDA) prepares batches ahead in a background thread."""
    device = torch.device(device)
    made = _batches(encoder, sentences, batch_size, device)
    ahead = device.type == "cuda" if prefetch is None else prefetch
    yield from (_ahead(made) if ahead and len(sentences) > batch_size else made)


def _batches(encoder, sentences, batch_size, device) -> Iterator:
    pin, left = device.type == "cuda", getattr(encoder.tokenizer, "padding_side", "right") == "left"
    for start in range(0, len(sentences), CHUNK):
        features = encoder.preprocess(list(sentences[start : start + CHUNK]))
        ids, lengths = features["input_ids"], _lengths(features)
        order = torch.argsort(-lengths, stable=True)
        for s in range(0, len(order), batch_size):
            rows = order[s : s + batch_size]
            width = int(lengths[rows].max())
            cut = slice(ids.shape[1] - width, None) if left else slice(0, width)
            batch = {k: _rows(v, rows, cut, ids.shape) for k, v in features.items()}
            yield (
                start + rows.numpy(),
                {k: _place(v, device, pin) if isinstance(v, torch.Tensor) else v for k, v in batch.items()},
            )


class Tokens:
    """Sentences tokenized once (in chunks, as batches() does), for a training run that draws batches
    in any order: batch(idx) gives the features encoder.preprocess would give for those sentences
    (padded to their own longest), on the device, without tokenizing again."""

    def __init__(self, encoder, sentences: list[str]):
        tok = encoder.tokenizer
        self.left = getattr(tok, "padding_side", "right") == "left"
        # what the tokenizer pads with (as its own pad() does), for rows of a chunk narrower than the batch
        self.pad_values = {"input_ids": tok.pad_token_id or 0, "token_type_ids": getattr(tok, "pad_token_type_id", 0)}
        self.chunks = [encoder.preprocess(list(sentences[s : s + CHUNK])) for s in range(0, len(sentences), CHUNK)]
        self.lengths = np.concatenate([_lengths(c).numpy() for c in self.chunks]) if self.chunks else np.zeros(0)

    def batch(self, idx, device) -> dict:
        idx = np.asarray(idx)
        which, rows = np.divmod(idx, CHUNK)
        width = int(self.lengths[idx].max())
        parts, order = [], []
        for c in np.unique(which):
            sel = np.nonzero(which == c)[0]
            features = self.chunks[c]
            shape = features["input_ids"].shape
            cut = slice(max(0, shape[1] - width), None) if self.left else slice(0, width)
            part = {k: _rows(v, torch.from_numpy(rows[sel]), cut, shape) for k, v in features.items()}
            parts.append({k: self._widen(k, v, width, shape) for k, v in part.items()})
            order.append(sel)
        batch = parts[0]
        if len(parts) > 1:  # rows from several chunks: joined, then put back in the order of idx
            back = torch.from_numpy(np.argsort(np.concatenate(order)))
            batch = {
                k: torch.cat([p[k] for p in parts])[back] if isinstance(v, torch.Tensor) else v
                for k, v in batch.items()
            }
        pin = torch.device(device).type == "cuda"
        return {k: _place(v, device, pin) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def _widen(self, key: str, value, width: int, shape):
        """A chunk's rows padded out to `width` tokens when the chunk itself is narrower."""
        if (
            not isinstance(value, torch.Tensor)
            or value.ndim < 2
            or value.shape[1] >= width
            or value.shape[1] != shape[1]
        ):
            return value
        extra = width - value.shape[1]
        return torch.nn.functional.pad(
            value, (extra, 0) if self.left else (0, extra), value=self.pad_values.get(key, 0)
        )


def _lengths(features: dict) -> torch.Tensor:
    """Tokens per sentence of preprocessed features (their attention mask; all of them without one)."""
    ids, mask = features["input_ids"], features.get("attention_mask")
    return mask.sum(1) if mask is not None else torch.full((len(ids),), ids.shape[1])


def _rows(value, rows, cut: slice, shape):
    """The batch's rows of one feature, token columns trimmed to the batch's longest sentence."""
    if not isinstance(value, torch.Tensor) or value.ndim == 0 or value.shape[0] != shape[0]:
        return value
    value = value[rows]
    return value[:, cut] if value.ndim >= 2 and value.shape[1] == shape[1] else value


_END = object()


def _ahead(items: Iterator) -> Iterator:
    """The items of `items`, produced up to PREFETCH ahead in one background thread; its error is
    raised here, in order; stopping early (break, an exception in the loop) stops the thread."""
    ready: queue.Queue = queue.Queue(PREFETCH)
    stop = threading.Event()

    def hand(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in items:
                if not hand((item, None)):
                    return
            hand((_END, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
            hand((None, e))

    thread = threading.Thread(target=work, name="mtl-batches-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()
