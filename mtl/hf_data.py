"""Hugging Face `datasets` as training data: `hf:NAME[:SPLIT]` (or hf:NAME:CONFIG:SPLIT), streamed from the
Hub, or a folder written by `save_to_disk` (optionally DIR:SPLIT). Checked like CSV files: a bad row is a
DataError naming the row and what is wrong. `load_data` picks this or mtl.data.load_labelled by the source."""

import os
from pathlib import Path

from .data import Dataset, load_labelled
from .errors import DataError


def _split_source(source: str):
    """(folder, split or None) for 'DIR' or 'DIR:SPLIT'; None when `source` is not a folder."""
    if Path(source).is_dir():
        return Path(source), None
    head, sep, split = source.rpartition(":")
    if sep and head and Path(head).is_dir() and split:
        return Path(head), split
    return None


def is_datasets_source(source) -> bool:
    """hf:NAME[:SPLIT], or a folder (written by datasets' save_to_disk), optionally DIR:SPLIT."""
    source = str(source)
    return source.startswith("hf:") or _split_source(source) is not None


def load_data(sources, text_column: str = "text", label_sets: dict | None = None, split: str = "train") -> Dataset:
    """CSV/JSONL files (mtl.data.load_labelled), or one Hugging Face dataset; `split` is the default split."""
    sources = [sources] if isinstance(sources, (str, Path)) else list(sources)
    if not any(is_datasets_source(s) for s in sources):
        return load_labelled(sources, text_column=text_column, label_sets=label_sets)
    if len(sources) > 1:
        raise DataError("give one Hugging Face dataset (hf:NAME[:SPLIT] or a datasets folder), or CSV/JSONL files")
    return load_hf_dataset(str(sources[0]), text_column, label_sets, split)


def _open_hf(source: str, split: str):
    """(dataset or iterable dataset, split used)."""
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"{source}: reading Hugging Face datasets needs the `datasets` package (pip install datasets); "
            "CSV and JSONL files need nothing more"
        ) from None
    if source.startswith("hf:"):
        parts = source[3:].split(":")
        if not parts[0] or len(parts) > 3 or not all(parts):
            raise DataError(f"{source}: expected hf:NAME, hf:NAME:SPLIT or hf:NAME:CONFIG:SPLIT")
        name, config = parts[0], parts[1] if len(parts) == 3 else None
        split = parts[-1] if len(parts) > 1 else split
        try:  # streaming: rows are read as they come, only the text and label columns are kept
            return datasets.load_dataset(name, config, split=split, streaming=True), split
        except Exception as e:  # noqa: BLE001 - network, offline mode, unknown name or split: all one clear line
            flags = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
            offline = any(os.environ.get(v, "").lower() not in ("", "0", "false") for v in flags)
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(
                f"{source}: cannot load Hugging Face dataset {name!r} split {split!r}"
                + (" (offline: HF_HUB_OFFLINE is set)" if offline else "")
                + f": {why}. It needs internet access, or a local copy: "
                "datasets.load_dataset(...).save_to_disk(DIR), then pass DIR"
            ) from None
    folder, folder_split = _split_source(source)
    try:
        ds = datasets.load_from_disk(str(folder))
    except Exception as e:  # noqa: BLE001
        raise DataError(f"{folder}: not a datasets folder (one written by save_to_disk): {e}") from None
    if isinstance(ds, datasets.DatasetDict):
        split = folder_split or split
        if split not in ds:
            raise DataError(f"{folder}: no split {split!r} (splits: {', '.join(ds)}); pass {folder}:SPLIT")
        ds = ds[split]
    return ds, split


def _label_columns(features, first: dict, text_column: str) -> dict:
    """{column: ClassLabel names or None} for the task columns: class labels, strings and booleans."""
    from datasets import ClassLabel, Value

    out = {}
    for name in first:
        if name == text_column:
            continue
        f = features.get(name) if features else None
        if isinstance(f, ClassLabel):
            out[name] = list(f.names)
        elif isinstance(f, Value) and f.dtype in ("string", "large_string", "bool"):
            out[name] = None
        elif f is None and all(v is None or isinstance(v, (str, bool)) for v in first[name]):
            out[name] = None
    return out


def load_hf_dataset(source: str, text_column="text", label_sets=None, split="train", batch_size=10_000) -> Dataset:
    """A Hugging Face dataset as a mtl Dataset: the text column plus one task per class-label, string or
    boolean column (missing labels: None, "" or -1). Checked like CSV files: the row and what is wrong."""
    ds, split = _open_hf(source, split)
    where = f"{source} ({split})"
    texts, per_task, tasks = [], {}, None
    row = 0
    for batch in ds.iter(batch_size=batch_size):
        if tasks is None:
            if text_column not in batch:
                raise DataError(f"{where}: no {text_column!r} column (columns are: {', '.join(batch)})")
            tasks = _label_columns(ds.features, batch, text_column)
            if not tasks:
                raise DataError(f"{where}: no label columns (class labels or strings) besides {text_column!r}")
            if label_sets:
                unknown = [t for t in tasks if t not in label_sets]
                if unknown:
                    known = ", ".join(label_sets)
                    raise DataError(f"{where}: column(s) {', '.join(unknown)} are not known tasks ({known})")
            per_task = {t: [] for t in tasks}
        for i, text in enumerate(batch[text_column]):
            row += 1
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{where}: row {row}: empty text")
            labels = {}
            for t, names in tasks.items():
                v = batch[t][i]
                if names is not None:
                    v = names[v] if v is not None and v >= 0 else None
                elif isinstance(v, bool):
                    v = str(v).lower()
                elif v is not None:
                    v = v.strip() or None
                if v is not None and label_sets and v not in label_sets[t]:
                    raise DataError(
                        f"{where}: row {row}: label {v!r} is not in the label set of task {t!r} "
                        f"({', '.join(label_sets[t])})"
                    )
                labels[t] = v
            if all(v is None for v in labels.values()):
                raise DataError(f"{where}: row {row}: no label for any task ({', '.join(tasks)})")
            texts.append(text.strip())
            for t, v in labels.items():
                per_task[t].append(v)
    if not texts:
        raise DataError(f"{where}: no rows")
    sets = {}
    for t, names in tasks.items():
        if label_sets and t in label_sets:
            sets[t] = list(label_sets[t])
        else:
            sets[t] = names if names is not None else sorted({v for v in per_task[t] if v is not None})
        if len(sets[t]) < 2:
            raise DataError(f"{where}: task {t!r} has only {len(sets[t])} distinct label(s); a task needs 2 or more")
    return Dataset(texts, per_task, sets)
