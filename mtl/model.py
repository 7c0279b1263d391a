"""The multi-task model: one shared sentence encoder, one head per task, one encoder pass."""

import numpy as np
import torch
from torch import nn

from .batches import batches
from .config import PRECISIONS, ModelConfig
from .device import bf16_supported, resolve_device
from .encoder import build_encoder, encode, hf_model
from .errors import ConfigError
from .heads import TaskHead
from .io import weights_sha256


class MultiTaskModel(nn.Module):
    def __init__(self, config: ModelConfig, tasks: dict[str, list[str]], device="cpu", encoder=None):
        super().__init__()
        if not tasks:
            raise ConfigError("a model needs at least one task")
        for task, labels in tasks.items():
            if len(labels) < 2:
                raise ConfigError(f"task {task!r} needs at least 2 labels; got {labels}")
            if len(set(labels)) != len(labels):
                raise ConfigError(f"task {task!r} has duplicate labels: {labels}")
        self.config = config
        self.tasks = {t: list(labels) for t, labels in tasks.items()}
        self.encoder = encoder or build_encoder(
            config.base_model, config.pooling, config.normalize, config.max_seq_length, device
        )
        # Identifies the pretrained weights, so a checkpoint storing only a delta can refuse another base.
        self.base_hash = weights_sha256(hf_model(self.encoder))
        dim = self.encoder.get_embedding_dimension()
        self.heads = nn.ModuleDict(
            {t: TaskHead(dim, len(labels), config.dropout, config.head_hidden) for t, labels in self.tasks.items()}
        )
        self.precision = "fp32"  # inference precision: fp32 | bf16 (set_precision picks by hardware)
        self.trained_params: set[str] = set()  # encoder weights changed by training (saved in checkpoints)
        self.checkpoint_meta: dict | None = None  # the mtl.json this model was loaded from (load_checkpoint)
        self.to(device)

    @property
    def device(self) -> torch.device:
        return next(self.heads.parameters()).device

    def embed(self, features: dict) -> torch.Tensor:
        return self.encoder(features)["sentence_embedding"]  # (B, D)

    def forward(self, features: dict, tasks=None) -> dict[str, torch.Tensor]:
        """Logits per task from one encoder pass: {task: (B, num_labels)}."""
        emb = self.embed(features)
        return {t: self.heads[t](emb) for t in (tasks or self.tasks)}

    def init_heads_from_labels(self, scale: float = 20.0) -> None:
        """Start every head as the zero-shot classifier of its label names: row i of the head's weight is the
        encoder's embedding of label i, so the logits rank labels by cosine similarity to the sentence; `scale`
        is the logit of a cosine of 1 for a sentence vector of the labels' mean length."""
        for task, labels in self.tasks.items():
            linear = self.heads[task].net[-1]
            if len(self.heads[task].net) > 2:
                raise ConfigError("head_init labels needs linear heads (head_hidden 0)")
            emb = torch.as_tensor(encode(self.encoder, labels), dtype=torch.float32, device=self.device)
            lengths = emb.norm(dim=1, keepdim=True).clamp_min(1e-6)
            with torch.no_grad():
                linear.weight.copy_(emb / lengths * (scale / lengths.mean()))
                linear.bias.zero_()

    def set_precision(self, precision: str = "auto", weights: bool = False) -> str:
        """fp32, bf16, or auto: bf16 where the device supports it natively (see bench/inference.py). By
        default bf16 runs as autocast over float32 weights; `weights` stores the weights themselves in
        that precision, for a model that only predicts (the CLI's predict and eval): no cast per pass,
        half the memory, and then it cannot be saved (checkpoint.save_checkpoint refuses)."""
        if precision == "auto":
            precision = "bf16" if bf16_supported(self.device) else "fp32"
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be auto or one of {', '.join(PRECISIONS)}; got {precision!r}")
        self.precision = precision
        if weights:
            self.to(torch.bfloat16 if precision == "bf16" else torch.float32)
        return precision

    @property
    def weights_dtype(self) -> torch.dtype:
        return next(self.heads.parameters()).dtype

    def _autocast(self):
        """bf16 autocast when bf16 is asked for and the weights are still float32."""
        enabled = self.precision == "bf16" and self.weights_dtype == torch.float32
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    @torch.inference_mode()
    def predict_proba(self, sentences: list[str], batch_size: int = 64) -> dict[str, torch.Tensor]:
        """{task: (N, num_labels) float32 probabilities on the CPU}. Batches go longest first, padded
        per batch (mtl/batches.py); results stay on the device until one copy at the end, so a GPU never
        waits for the host between batches."""
        was_training = self.training
        self.eval()
        try:
            n = len(sentences)
            ordered = {t: torch.empty(n, len(labels), device=self.device) for t, labels in self.tasks.items()}
            order, done = [], 0
            for idx, features in batches(self.encoder, sentences, batch_size, self.device):
                with self._autocast():
                    logits = self(features)
                for t, lg in logits.items():
                    ordered[t][done : done + len(idx)] = lg.float().softmax(-1)
                order.append(idx)
                done += len(idx)
            back = torch.from_numpy(np.argsort(np.concatenate(order))) if order else torch.zeros(0, dtype=torch.long)
            return {t: p.cpu()[back] for t, p in ordered.items()}
        finally:
            self.train(was_training)

    def predict(self, sentences: list[str], batch_size: int = 64) -> list[dict]:
        """Per sentence: {task: {"label": top label, "score": its probability, "probs": {label: p}}}."""
        if isinstance(sentences, str):
            sentences = [sentences]
        probs = self.predict_proba(list(sentences), batch_size)
        results = []
        for i in range(len(sentences)):
            row = {}
            for t, labels in self.tasks.items():
                p = probs[t][i].tolist()
                top = max(range(len(labels)), key=p.__getitem__)
                row[t] = {"label": labels[top], "score": p[top], "probs": dict(zip(labels, p))}
            results.append(row)
        return results


def new_model(tasks: dict[str, list[str]], config: ModelConfig | None = None, device="auto", seed=None):
    """A model with freshly initialised heads on the pretrained encoder (seeded for repeatability)."""
    if seed is not None:
        torch.manual_seed(seed)
    dev = resolve_device(device) if isinstance(device, str) else device
    return MultiTaskModel(config or ModelConfig(), tasks, dev)
