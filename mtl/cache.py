"""Cache what freezing makes constant.

A frozen part of the encoder, run in eval mode, computes the same function every epoch. So:
- whole encoder frozen: cache the pooled sentence embeddings once; an epoch of head training is
  then a few small matrix products;
- embeddings + bottom K layers frozen: cache the hidden states after layer K-1 (unpadded, one
  tensor per sentence) and run only the layers above.
The cached path gives the same losses as the uncached one (same batches, same dropout draws),
up to float rounding from padding the cache was computed with. Memory is bounded: above
`max_bytes` the caller falls back to the uncached path.
"""

import contextlib
import time

import torch
from torch import nn

from .batches import Tokens, batches
from .encoder import hf_model
from .freeze import component_params

DEFAULT_MAX_BYTES = 2 * 1024**3


def frozen_prefix(model, frozen: set[str]) -> int | None:
    """How many bottom layers are frozen along with the embeddings (None: embeddings trainable).
    Returns the number of layers N when the whole encoder is frozen."""
    if "embeddings" not in frozen:
        return None
    components = list(component_params(model))
    layers = [c for c in components if c.startswith("layer.")]
    k = 0
    while k < len(layers) and f"layer.{k}" in frozen:
        k += 1
    if k == len(layers) and "encoder.other" in components and "encoder.other" not in frozen:
        k -= 1  # a trainable final norm needs the last layer's output, not the pooled one
    return k


def _layer_list(hf) -> nn.ModuleList:
    for name, module in hf.named_modules():
        if isinstance(module, nn.ModuleList) and name.split(".")[-1] in ("layer", "layers"):
            return module
    raise ValueError("no transformer layer list found in this model")


class _Replay(nn.Module):
    """Stands in for the embeddings: returns the cached hidden states of the current batch."""

    def __init__(self, hidden):
        super().__init__()
        self.hidden = hidden

    def forward(self, *args, **kwargs):
        return self.hidden


class _Skip(nn.Module):
    """Stands in for a frozen layer whose output is already in the cache."""

    def __init__(self, tuple_output: bool):
        super().__init__()
        self.tuple_output = tuple_output

    def forward(self, hidden_states, *args, **kwargs):
        return (hidden_states,) if self.tuple_output else hidden_states


class FeatureCache:
    """Frozen-part outputs for a fixed list of texts. mode is "pooled" or "prefix"."""

    def __init__(self, model, texts: list[str], k: int, batch_size: int = 64):
        self.k, self.texts = k, texts
        hf = hf_model(model.encoder)
        self.layers = _layer_list(hf)
        self.mode = "pooled" if k == len(self.layers) else "prefix"
        self.tuple_output = False
        self.items: list[torch.Tensor] = [None] * len(texts)
        self._compute(model, batch_size)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.items)

    @torch.inference_mode()
    def _compute(self, model, batch_size):
        was_training = model.training
        model.eval()
        captured = {}

        def grab(module, args, output):
            captured["out"] = output

        target = hf_model(model.encoder).embeddings if self.k == 0 else self.layers[self.k - 1]
        hook = target.register_forward_hook(grab) if self.mode == "prefix" else None
        try:
            for idx, features in batches(model.encoder, self.texts, batch_size, model.device):
                emb = model.embed(features)
                if self.mode == "pooled":
                    pooled = emb.float().cpu()  # one copy from the device per batch, then its rows
                    for row, i in enumerate(idx):
                        self.items[i] = pooled[row].clone()
                    continue
                out = captured["out"]
                self.tuple_output = isinstance(out, tuple) and self.k > 0
                hidden = (out[0] if isinstance(out, tuple) else out).float().cpu()
                lengths = features["attention_mask"].sum(1).tolist()
                for row, i in enumerate(idx):
                    self.items[i] = hidden[row, : lengths[row]].clone()
        finally:
            if hook is not None:
                hook.remove()
            model.train(was_training)

    def pooled(self, idx, device) -> torch.Tensor:
        return torch.stack([self.items[i] for i in idx]).to(device)  # (B, D)

    def padded(self, idx, device) -> torch.Tensor:
        seq = [self.items[i] for i in idx]
        return nn.utils.rnn.pad_sequence(seq, batch_first=True).to(device)  # (B, T, H)

    @contextlib.contextmanager
    def replay(self, model, idx):
        """Within this block the encoder starts from the cached hidden states of batch `idx`."""
        hf = hf_model(model.encoder)
        saved_embeddings, saved_layers = hf.embeddings, [self.layers[i] for i in range(self.k)]
        hf.embeddings = _Replay(self.padded(idx, model.device))
        for i in range(self.k):
            self.layers[i] = _Skip(self.tuple_output)
        try:
            yield
        finally:
            hf.embeddings = saved_embeddings
            for i, layer in enumerate(saved_layers):
                self.layers[i] = layer


def estimate_bytes(model, texts: list[str], k: int) -> int:
    """Memory the cache would take, from token counts (float32)."""
    hf = hf_model(model.encoder)
    n_layers = len(_layer_list(hf))
    dim = model.encoder.get_embedding_dimension()
    if k == n_layers:
        return len(texts) * dim * 4
    tok = model.encoder.tokenizer(list(texts), truncation=True, max_length=model.encoder.max_seq_length)
    hidden = hf.config.hidden_size
    return sum(len(ids) for ids in tok["input_ids"]) * hidden * 4


def build_caches(model, frozen: set[str], train_texts, val_texts=None, max_bytes: int = DEFAULT_MAX_BYTES):
    """(train cache, validation cache or None, event dict or None) for a training run."""
    k = frozen_prefix(model, frozen)
    if k is None:
        return None, None, None
    need = estimate_bytes(model, train_texts, k)
    if need > max_bytes:
        message = f"the cache would take {need / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} MiB limit"
        return None, None, {"type": "cache", "used": False, "message": message + ": training uncached"}
    t0 = time.perf_counter()
    cache = FeatureCache(model, train_texts, k)
    val_cache = FeatureCache(model, val_texts, k) if val_texts is not None and cache.mode == "pooled" else None
    event = {
        "type": "cache",
        "used": True,
        "mode": cache.mode,
        "layers": k,
        "bytes": cache.nbytes,
        "seconds": time.perf_counter() - t0,
    }
    return cache, val_cache, event


@torch.inference_mode()
def head_probs(model, cache: FeatureCache, batch_size: int = 1024) -> dict[str, torch.Tensor]:
    """{task: (N, labels)} probabilities from cached pooled embeddings (heads in eval mode)."""
    was_training = model.training
    model.eval()
    try:
        out = {t: [] for t in model.tasks}
        for start in range(0, len(cache.items), batch_size):
            emb = cache.pooled(range(start, min(start + batch_size, len(cache.items))), model.device)
            for t in model.tasks:
                out[t].append(model.heads[t](emb).float().softmax(-1).cpu())
        return {t: torch.cat(v) for t, v in out.items()}
    finally:
        model.train(was_training)


def batch_logits(
    model, tokens: Tokens | None, idx, tasks, cache: FeatureCache | None = None
) -> dict[str, torch.Tensor]:
    """{task: (B, labels)} logits of training batch `idx` (rows of the tokenized texts) for `tasks`: from
    the frozen part's cache where there is one, otherwise through the whole model."""
    if cache is not None and cache.mode == "pooled":
        emb = cache.pooled(idx, model.device)
        return {t: model.heads[t](emb) for t in tasks}
    features = tokens.batch(idx, model.device)
    if cache is None:
        return model(features, tasks=tasks)
    with cache.replay(model, idx):
        return model(features, tasks=tasks)


class BatchForward(nn.Module):
    """batch_logits as a module (the model is its submodule), so DDP sees every path through it."""

    def __init__(self, model, texts, cache: FeatureCache | None):
        super().__init__()
        self.model, self.cache = model, cache
        # tokenized once per run, unless every batch comes from the cache of pooled embeddings
        self.tokens = None if cache is not None and cache.mode == "pooled" else Tokens(model.encoder, texts)

    def forward(self, idx, tasks):
        return batch_logits(self.model, self.tokens, idx, tasks, self.cache)
