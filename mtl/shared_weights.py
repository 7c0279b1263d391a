"""Frozen weights held once: a model trained from another keeps only what it trains.

A `bottom:4` model built from the pretrained encoder differs from it in two layers and the heads;
the embeddings and the four frozen layers are the same numbers as in the shipped model or in another
model trained the same way. share_frozen points each such frozen parameter at a reference model's
tensor (the same storage, a Parameter of its own), so the copy costs what it trains, not a whole
encoder. Only frozen weights bit-identical to a reference's are shared, and never a weight either
model counts as trained (trained_params, which checkpoint.round_weights writes to when a model is
saved): nothing that trains or saves a model ever writes into a shared tensor, so every model
sharing it stays exactly as it was. Freezing must come first (freeze.apply_freeze): a weight that
trains is never shared. References must not train in place (the app trains copies).
"""

import torch
from torch import nn

from .encoder import hf_model


def _owner(root: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The module that holds parameter `name` (dotted, as named_parameters gives it) and its own name."""
    path, _, leaf = name.rpartition(".")
    return (root.get_submodule(path) if path else root), leaf


def share_frozen(model, *references) -> int:
    """Share `model`'s frozen encoder weights that equal one of `references`' (see the module's doc):
    each weight with the first reference that holds it. Returns the bytes no longer held twice. A
    reference's own trained weights (reference.trained_params, which saving it may round in place) and
    weights on another device or in another dtype are left alone."""
    mine, saved = hf_model(model.encoder), 0
    candidates = [
        {n: p for n, p in hf_model(r.encoder).named_parameters() if n not in r.trained_params} for r in references
    ]
    for name, p in list(mine.named_parameters()):
        if p.requires_grad or name in model.trained_params:
            continue
        for theirs in candidates:
            r = theirs.get(name)
            if r is None or (r.shape, r.dtype, r.device) != (p.shape, p.dtype, p.device):
                continue
            if r.data_ptr() == p.data_ptr():
                break  # shared already
            if not _same_bits(r, p):
                continue
            module, leaf = _owner(mine, name)
            module._parameters[leaf] = nn.Parameter(r.detach(), requires_grad=False)
            saved += p.numel() * p.element_size()
            break
    _own_the_rest(mine, references)
    return saved


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit for bit (torch.equal alone takes 0.0 for -0.0)."""
    with torch.no_grad():
        return torch.equal(a.detach().contiguous().view(torch.uint8), b.detach().contiguous().view(torch.uint8))


def _own_the_rest(mine: nn.Module, references) -> None:
    """Give every weight that is not shared a copy of its own. Weights loaded from a safetensors file
    may be views of the whole file mapped into memory (86 MiB for MiniLM, all of it resident once
    read): while one such view lives, the whole mapping stays, so a model that shares most of its
    weights would still cost the whole file."""
    theirs = {p.data_ptr() for r in references for p in hf_model(r.encoder).parameters()}
    for name, p in list(mine.named_parameters()):
        if p.data_ptr() not in theirs:
            module, leaf = _owner(mine, name)
            module._parameters[leaf] = nn.Parameter(p.detach().clone(), requires_grad=p.requires_grad)


def shared_bytes(model, *references) -> int:
    """Bytes of `model`'s encoder weights that live in one of `references`' tensors."""
    theirs = {p.data_ptr() for r in references for p in hf_model(r.encoder).parameters()}
    return sum(p.numel() * p.element_size() for p in hf_model(model.encoder).parameters() if p.data_ptr() in theirs)
