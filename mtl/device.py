"""Pick where to run: CUDA, then Apple MPS, then the CPU."""

import torch

from .errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA GPU is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' was asked for but Apple MPS is not available")
    if name not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device must be one of auto, cpu, cuda, mps; got {name!r}")
    return torch.device(name)
