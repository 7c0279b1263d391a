"""Checkpoints: a directory of safetensors weights plus one JSON file. Never pickles.

A checkpoint stores only what training could change: the heads, and the encoder weights a run
updated. Everything else comes from the base model, whose weights' sha256 is recorded and checked
on load. Weight files are named by their content hash and `mtl.json` is replaced last, atomically:
it is the commit point, so a crash mid-save leaves the previous checkpoint loadable. A whole new
folder (the training loop's saves, export, the app) is written with mtl.io.atomic_directory.

save_checkpoint and load_checkpoint are symmetric: what one writes the other reads back, bit for bit,
once round_weights has brought the weights in memory to the precision they are saved in."""

import datetime
import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from . import __version__
from .bounded_json import JSONLimitError, parse_json
from .config import SAVE_DTYPES, ModelConfig
from .device import resolve_device
from .encoder import hf_model, resolve_base_model
from .errors import CheckpointError, ConfigError, MTLError
from .heads import TaskHead
from .io import atomic_directory, file_sha256, weights_sha256, write_atomic
from .model import MultiTaskModel

META = "mtl.json"
FORMAT = "mtl-checkpoint"
SELF = "."  # base_model of an exported checkpoint: the encoder lives in the checkpoint directory
TORCH_DTYPES = {name: getattr(torch, name) for name in SAVE_DTYPES}
# Sizes read from mtl.json are bounded before anything is allocated by them (JSON itself: mtl.bounded_json).
MAX_META_BYTES = 16 * 2**20  # a trained model's mtl.json is a few KB
MAX_LABELS = 100_000  # labels of one task: a head that size on a 384-wide encoder is 154 MB


def _check_dtype(dtype: str) -> torch.dtype:
    if dtype not in TORCH_DTYPES:
        raise ConfigError(f"save dtype must be one of {', '.join(TORCH_DTYPES)}; got {dtype!r}")
    return TORCH_DTYPES[dtype]


def round_weights(model, dtype: str) -> None:
    """Round the trained encoder weights in memory to `dtype`, the precision save_checkpoint(dtype=...)
    stores them in, so that the model in memory and the one loaded back predict identically. A float32
    save needs no rounding; the heads are always stored in full."""
    torch_dtype = _check_dtype(dtype)
    if torch_dtype == torch.float32:
        return
    params = dict(hf_model(model.encoder).named_parameters())
    with torch.no_grad():
        for n in model.trained_params:
            params[n].copy_(params[n].to(torch_dtype))


def _save_tensors(directory: Path, stem: str, tensors: dict) -> str:
    """Write tensors as `<stem>.<sha256 prefix>.safetensors`; returns the file name."""
    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    name = f"{stem}.{hashlib.sha256(data).hexdigest()[:16]}.safetensors"
    write_atomic(directory / name, lambda tmp: Path(tmp).write_bytes(data))
    return name


def _versions() -> dict:
    # imported here: loading them takes seconds, and most imports of this module only load checkpoints
    import sentence_transformers
    import transformers

    return {
        "mtl": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
    }


def save_checkpoint(
    model, directory, config=None, frozen=None, metrics=None, *, dtype="float32", base_model=None, base_hash=None
) -> Path:
    """Save heads + trained encoder weights + mtl.json into `directory` (made if missing); returns it.

    `config`: the TrainConfig of the run, `frozen`: the frozen components, `metrics`: e.g. {"validation": ...}.
    With dtype float16/bfloat16 the trained encoder weights are stored at half size; the weights in memory
    are left as they are (call round_weights first for a model that predicts as the saved one does)."""
    torch_dtype = _check_dtype(dtype)
    if model.weights_dtype != torch.float32:
        raise MTLError(
            f"this model's weights are {str(model.weights_dtype).removeprefix('torch.')} for prediction only "
            "(set_precision(..., weights=True)); load it again to save it"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    params = dict(hf_model(model.encoder).named_parameters())
    encoder_names = sorted(model.trained_params)
    files = {"heads": _save_tensors(directory, "heads", model.heads.state_dict())}
    if encoder_names:
        files["encoder"] = _save_tensors(directory, "encoder", {n: params[n].to(torch_dtype) for n in encoder_names})
    model_config = model.config.to_dict()
    if base_model is not None:
        model_config["base_model"] = base_model
    meta = {
        "format": FORMAT,
        "format_version": 1,
        "model": model_config,
        "tasks": model.tasks,
        "head_shapes": {t: {k: list(v.shape) for k, v in h.state_dict().items()} for t, h in model.heads.items()},
        "files": files,
        "sha256": {name: file_sha256(directory / name) for name in files.values()},
        "encoder_params": encoder_names,
        "encoder_dtype": dtype,
        "base_model_sha256": base_hash or model.base_hash,
        "freeze": sorted(frozen or ()),
        "train": config.to_dict() if config is not None else None,
        "metrics": metrics or {},
        "versions": _versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    write_atomic(directory / META, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2) + "\n"))
    # Only now, with the new mtl.json committed, remove weight files it no longer refers to.
    for old in directory.glob("*.safetensors"):
        if old.name.startswith(("heads.", "encoder.")) and old.name not in files.values():
            old.unlink(missing_ok=True)
    return directory


def check_save_target(directory) -> None:
    """A run's saves replace its output folder whole (atomic_directory): refuse, before training starts, a
    folder that holds anything but a checkpoint, rather than delete someone's files at the first save."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"{directory}: is a file; give a folder to save the checkpoint in")
    if directory.is_dir() and not (directory / META).is_file() and any(directory.iterdir()):
        raise CheckpointError(
            f"{directory}: the folder holds files that are not a checkpoint, and a save replaces the whole "
            "folder; give a new or empty folder (or an earlier checkpoint to overwrite)"
        )


def read_meta(directory) -> dict:
    """mtl.json, checked field by field."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    path = directory / META
    if not path.is_file():
        raise CheckpointError(f"{directory}: not a checkpoint (no {META})")
    size = path.stat().st_size
    if size > MAX_META_BYTES:
        raise CheckpointError(f"{path}: {size:,} bytes, over the {MAX_META_BYTES // 2**20} MB limit for {META}")
    try:
        meta = parse_json(path.read_text(encoding="utf-8"))
    except JSONLimitError as e:
        raise CheckpointError(f"{path}: line {e.lineno}: {e.msg}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an mtl checkpoint (format should be {FORMAT!r})")
    required = {
        "model": dict,
        "tasks": dict,
        "head_shapes": dict,
        "files": dict,
        "sha256": dict,
        "encoder_params": list,
    }
    for key, kind in required.items():
        if not isinstance(meta.get(key), kind):
            raise CheckpointError(f"{path}: field {key!r} is missing or not a {kind.__name__}")
    if meta.get("format_version", 1) != 1:
        raise CheckpointError(
            f"{path}: format_version {meta.get('format_version')!r} is not supported (this version reads 1)"
        )
    for task, labels in meta["tasks"].items():
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise CheckpointError(f"{path}: labels of task {task!r} must be a list of strings")
        if len(labels) > MAX_LABELS:
            raise CheckpointError(
                f"{path}: task {task!r} lists {len(labels):,} labels, over the limit of {MAX_LABELS:,}"
            )
    if not all(isinstance(n, str) for n in meta["encoder_params"]):
        raise CheckpointError(f"{path}: field 'encoder_params' must be a list of strings")
    if not all(isinstance(v, str) for v in meta["sha256"].values()):
        raise CheckpointError(f"{path}: field 'sha256' must map file names to hex strings")
    optional = {
        "base_model_sha256": (str, type(None)),
        "train": (dict, type(None)),
        "metrics": (dict,),
        "freeze": (list,),
    }
    for key, kinds in optional.items():
        if key in meta and not isinstance(meta[key], kinds):
            names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise CheckpointError(f"{path}: field {key!r} must be a {names}")
    try:
        meta["model"] = ModelConfig.from_dict(meta["model"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: bad model config: {e}") from None
    return meta


def _load_weights(directory: Path, meta: dict, key: str) -> dict:
    name = meta["files"].get(key)
    if name is None:
        return {}
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(".safetensors"):
        raise CheckpointError(f"{directory}: bad file name for {key!r} in {META}: {name!r}")
    path = directory / name
    if not path.is_file():
        raise CheckpointError(f"{directory}: missing weight file {name}")
    if file_sha256(path) != meta["sha256"].get(name):
        raise CheckpointError(f"{path}: checksum mismatch: the file is corrupted or truncated")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None


def load_checkpoint(directory, device="auto"):
    """Rebuild a MultiTaskModel from a checkpoint directory; `model.checkpoint_meta` holds its mtl.json."""
    directory = Path(directory)
    meta = read_meta(directory)
    config: ModelConfig = meta["model"]
    dev = resolve_device(device) if isinstance(device, str) else device
    base = str(directory.resolve()) if config.base_model == SELF else config.base_model
    _refuse_pickled_base(directory, base)
    build_config = ModelConfig(**{**config.to_dict(), "base_model": base})
    heads = _load_weights(directory, meta, "heads")
    encoder_delta = _load_weights(directory, meta, "encoder")
    _check_head_shapes(directory, meta, heads)  # before the model: nothing is allocated at a size only mtl.json says
    try:
        model = MultiTaskModel(build_config, meta["tasks"], device="cpu")
    except ConfigError as e:
        raise CheckpointError(f"{directory}: {e}") from None
    model.config = config
    hf = hf_model(model.encoder)
    expected = meta.get("base_model_sha256")
    actual = model.base_hash
    if expected and expected != actual:
        raise CheckpointError(
            f"{directory}: trained on a different base model: {config.base_model!r} now has weights "
            f"sha256 {actual[:12]}, the checkpoint expects {expected[:12]}"
        )
    _load_heads(directory, model, meta, heads)
    params = dict(hf.named_parameters())
    if sorted(encoder_delta) != sorted(meta["encoder_params"]):
        raise CheckpointError(f"{directory}: encoder weights do not match the list in {META}")
    with torch.no_grad():
        for name, value in encoder_delta.items():
            if name not in params or params[name].shape != value.shape:
                raise CheckpointError(f"{directory}: encoder weight {name!r} does not fit the base model")
            params[name].copy_(value)
    model.trained_params = set(encoder_delta)
    model.checkpoint_meta = meta
    return model.to(dev).eval()


def _refuse_pickled_base(directory: Path, base: str) -> None:
    """A checkpoint names its base model; a local base model directory must hold safetensors weights.
    Weights only in pickle-based files (pytorch_model.bin, *.pt, *.ckpt) are refused: loading a pickle can
    run code, and nothing this project loads is ever a pickle."""
    try:
        path = Path(resolve_base_model(base))
    except MTLError:
        return  # the encoder build reports it
    if not path.is_dir() or any(path.glob("*.safetensors")):
        return
    pickled = sorted(p.name for ext in ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl") for p in path.glob(ext))
    if pickled:
        raise CheckpointError(
            f"{directory}: its base model {base!r} has weights only in pickle files ({', '.join(pickled)}); "
            "only safetensors weights are loaded"
        )


def _head_state(heads: dict, task: str) -> dict:
    return {k.split(".", 1)[1]: v for k, v in heads.items() if k.split(".", 1)[0] == task}


def _check_head_shapes(directory: Path, meta: dict, heads: dict) -> None:
    """The heads file must hold, for every task, the weights its label list and head_hidden call for: shapes
    taken from a TaskHead built on the meta device (no memory), its input size from the file (checked against
    the encoder by _load_heads once the model is built)."""
    config = meta["model"]
    for task, labels in meta["tasks"].items():
        state = _head_state(heads, task)
        with torch.device("meta"):
            own = TaskHead(1, len(labels), config.dropout, config.head_hidden).state_dict()
        if set(state) != set(own):
            raise CheckpointError(f"{directory}: head {task!r} weights are missing or unexpected")
        first = state[next(k for k, v in own.items() if v.ndim == 2)]  # the first layer's weight: (out, in)
        with torch.device("meta"):
            own = TaskHead(first.shape[1] if first.ndim == 2 else 1, len(labels), 0.0, config.head_hidden)
        for k, v in own.state_dict().items():
            if state[k].shape != v.shape:
                raise _head_shape_error(directory, task, k, state[k], v, len(labels), config.head_hidden)


def _head_shape_error(directory, task, key, got, expected, n_labels, hidden) -> CheckpointError:
    out = got.shape[0] if got.ndim else "?"
    return CheckpointError(
        f"{directory}: head {task!r} weight {key} has shape {list(got.shape)}, expected {list(expected.shape)} "
        f"({n_labels} labels, hidden {hidden}); the label list does not match the head ({out} outputs)"
    )


def _load_heads(directory, model, meta, heads):
    for task, labels in model.tasks.items():
        state = _head_state(heads, task)
        own = model.heads[task].state_dict()
        if set(state) != set(own):
            raise CheckpointError(f"{directory}: head {task!r} weights are missing or unexpected")
        for k, v in state.items():
            if v.shape != own[k].shape:
                raise _head_shape_error(directory, task, k, v, own[k], len(labels), model.config.head_hidden)
        model.heads[task].load_state_dict(state)
    extra = {k.split(".", 1)[0] for k in heads} - set(model.tasks)
    if extra:
        raise CheckpointError(f"{directory}: weights for unknown head(s) {', '.join(sorted(extra))}")


def export_standalone(model, output) -> Path:
    """A full directory: the encoder loads with plain `SentenceTransformer(output)`, and
    `load_checkpoint(output)` gives the whole multi-task model, with no base model needed."""
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise MTLError(f"{output}: already exists and is not empty; choose a new directory")
    with atomic_directory(output, replace=False) as tmp:
        model.encoder.save(str(tmp))
        # every encoder weight is in the export: nothing is a delta on a base model any more
        trained, model.trained_params = model.trained_params, set()
        try:
            save_checkpoint(
                model,
                tmp,
                base_model=SELF,
                base_hash=weights_sha256(hf_model(model.encoder)),
                metrics=(model.checkpoint_meta or {}).get("metrics"),
            )
        finally:
            model.trained_params = trained
    return output
