"""Reading and validating labelled data: CSV or JSON Lines, a text column plus one column per task.

Several files may each label only some tasks; a missing label is simply not trained on for that
task. Any problem raises DataError naming the file, the line and what is wrong, and nothing is
half-loaded. A Dataset is the one way to take part of the data (select, head, sample, restrict) and
to turn labels into ids (label_ids)."""

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .bounded_json import JSONLimitError, parse_json
from .errors import DataError

TEXT_COLUMN = "text"
# a column that says where a text comes from (its register: headlines, posts, reviews, ...), not a task:
# evaluation reports per group, and the leave-one-register-out sweep holds one group out at a time
GROUP_COLUMN = "register"
ROW_FILE_TYPES = (".csv", ".jsonl", ".json")  # what read_rows reads: a header or keys, one row per line
TEXT_FILE_TYPES = (".csv", ".jsonl", ".txt")  # the files to offer for texts to predict or encode (load_texts)
SHIPPED_SPLITS = ("data/train.csv", "data/val.csv", "data/test.csv")  # the project's dataset, from a checkout


@dataclass
class Dataset:
    """Texts with their labels for every task (None where a text has no label for a task)."""

    texts: list[str]
    labels: dict[str, list]  # {task: [label or None per text]}
    label_sets: dict[str, list[str]] = field(default_factory=dict)  # {task: ordered labels}
    groups: list | None = None  # the group (register) of every text, None where a text has none; or no groups

    def __post_init__(self):
        for task, column in self.labels.items():
            if len(column) != len(self.texts):
                raise DataError(f"task {task!r} has {len(column)} labels for {len(self.texts)} texts")
        if self.groups is not None and len(self.groups) != len(self.texts):
            raise DataError(f"{len(self.groups)} groups for {len(self.texts)} texts")
        if not self.label_sets:
            self.label_sets = {t: sorted({v for v in col if v is not None}) for t, col in self.labels.items()}

    def __len__(self):
        return len(self.texts)

    @property
    def tasks(self) -> dict[str, list[str]]:
        return dict(self.label_sets)

    def label_ids(self, task: str, label_set: list[str] | None = None) -> list[int]:
        """Label indices for one task, -1 where the text has no label for it. The index is into
        `label_set` (e.g. a model's labels for the task) or, by default, into this dataset's label set."""
        label_set = self.label_sets[task] if label_set is None else label_set
        index = {lab: i for i, lab in enumerate(label_set)}
        unknown = sorted({v for v in self.labels[task] if v is not None and v not in index})
        if unknown:
            labels = ", ".join(map(repr, unknown))
            raise DataError(f"task {task!r}: label(s) {labels} not in the label set ({', '.join(label_set)})")
        return [index[v] if v is not None else -1 for v in self.labels[task]]

    # Taking part of a dataset: every way goes through select, so texts and labels stay in line.
    def select(self, indices) -> "Dataset":
        """These rows, in this order; the label sets are kept (a label may then have no example)."""
        indices = [int(i) for i in indices]
        labels = {t: [col[i] for i in indices] for t, col in self.labels.items()}
        groups = None if self.groups is None else [self.groups[i] for i in indices]
        return Dataset([self.texts[i] for i in indices], labels, dict(self.label_sets), groups)

    def head(self, n: int) -> "Dataset":
        """The first n rows (all of them, unchanged, when there are no more than n)."""
        return self if n >= len(self) else self.select(range(n))

    def sample(self, n: int, seed: int) -> "Dataset":
        """n rows chosen at random with this seed, kept in file order (all of them when there are no more)."""
        if n >= len(self):
            return self
        return self.select(np.sort(np.random.default_rng(seed).permutation(len(self))[:n]))

    def restrict(self, tasks: list[str] | None) -> "Dataset":
        """Only these tasks' labels, and only the rows labelled for at least one of them (None: unchanged)."""
        if not tasks:
            return self
        keep = [i for i in range(len(self)) if any(self.labels[t][i] is not None for t in tasks)]
        labels = {t: [self.labels[t][i] for i in keep] for t in tasks}
        groups = None if self.groups is None else [self.groups[i] for i in keep]
        return Dataset([self.texts[i] for i in keep], labels, {t: self.label_sets[t] for t in tasks}, groups)

    @staticmethod
    def concat(parts: list["Dataset"]) -> "Dataset":
        """One dataset of these, in order (e.g. every split of a corpus); label sets of the first part."""
        tasks = list(dict.fromkeys(t for d in parts for t in d.labels))
        labels = {t: [v for d in parts for v in d.labels.get(t, [None] * len(d))] for t in tasks}
        grouped = any(d.groups is not None for d in parts)
        groups = [g for d in parts for g in (d.groups or [None] * len(d))] if grouped else None
        sets = {t: parts[0].label_sets.get(t) or sorted({v for v in labels[t] if v is not None}) for t in tasks}
        return Dataset([x for d in parts for x in d.texts], labels, sets, groups)

    def group_indices(self) -> dict[str, list[int]]:
        """{group: its rows}, groups in order of first appearance; {} when the data has no groups."""
        out: dict[str, list[int]] = {}
        for i, g in enumerate(self.groups or []):
            if g is not None:
                out.setdefault(g, []).append(i)
        return out

    def split_by_group(self, held_out: str) -> tuple["Dataset", "Dataset"]:
        """(every row not of group `held_out`, the rows of `held_out`): leave-one-group-out."""
        if held_out not in self.group_indices():
            raise DataError(f"no group {held_out!r} in the data ({', '.join(self.group_indices()) or 'no groups'})")
        inside = [i for i, g in enumerate(self.groups) if g != held_out]
        return self.select(inside), self.select(self.group_indices()[held_out])

    def only_groups(self, groups: list[str]) -> "Dataset":
        """The rows of these groups."""
        known = self.group_indices()
        missing = [g for g in groups if g not in known]
        if missing:
            raise DataError(f"no group(s) {', '.join(map(repr, missing))} in the data ({', '.join(known) or 'none'})")
        return self.select(sorted(i for g in groups for i in known[g]))

    def counts(self) -> dict[str, dict[str, int]]:
        return {t: {lab: col.count(lab) for lab in self.label_sets[t]} for t, col in self.labels.items()}


def _decode(path: Path, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line}: not valid UTF-8 (byte {raw[e.start]:#04x}); save the file as UTF-8"
        ) from None
    if "\x00" in text:  # valid UTF-8, but no text file has NUL bytes: UTF-16 without a BOM, or binary
        line = text[: text.index("\x00")].count("\n") + 1
        raise DataError(
            f"{path}: line {line}: a NUL byte: this is a binary file or UTF-16 text, not UTF-8; save the file as UTF-8"
        )
    return text


def fmt_bytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else (f"{n / 1e3:.0f} KB" if n >= 1e3 else f"{n} bytes")


def read_text(path, max_bytes: int | None = None) -> str:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise DataError(f"{path}: file is {fmt_bytes(size)}, over the {fmt_bytes(max_bytes)} limit")
    return _decode(path, path.read_bytes())


def _rows_csv(path: Path, text: str):
    """Yield (line number, {column: value}) from CSV text."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: the file is empty")
        header = [h.strip() for h in header]
        if len(set(header)) != len(header):
            raise DataError(f"{path}: line 1: duplicate column names in header {header}")
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue  # blank line
            if len(row) != len(header):
                raise DataError(
                    f"{path}: line {reader.line_num}: {len(row)} fields but the header has {len(header)} "
                    f"(quote text that contains commas)"
                )
            yield reader.line_num, dict(zip(header, row))
    except csv.Error as e:
        raise DataError(f"{path}: line {reader.line_num}: malformed CSV ({e})") from None


def _rows_jsonl(path: Path, text: str):
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = parse_json(line)  # bounded: no nesting or number can exhaust the parser
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: line {n}: not valid JSON ({e.msg})") from None
        except JSONLimitError as e:
            raise DataError(f"{path}: line {n}: {e.msg}") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}: line {n}: expected a JSON object, got {type(obj).__name__}")
        for k, v in obj.items():
            if v is not None and not isinstance(v, (str, int, float)):
                raise DataError(f"{path}: line {n}: field {k!r} must be text, got {type(v).__name__}")
        yield n, {k: "" if v is None else str(v) for k, v in obj.items()}


def read_rows(path, max_bytes: int | None = None):
    """[(line, {column: value})] for a .csv or .jsonl file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ROW_FILE_TYPES:
        raise DataError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv or .jsonl")
    text = read_text(path, max_bytes)
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    rows = list((_rows_csv if suffix == ".csv" else _rows_jsonl)(path, text))
    if not rows:
        raise DataError(f"{path}: no data rows")
    return rows


def load_labelled(
    paths,
    text_column: str = TEXT_COLUMN,
    label_sets: dict | None = None,
    max_rows: int | None = None,
    max_bytes: int | None = None,
    group_column: str | None = GROUP_COLUMN,
) -> Dataset:
    """Load one or more labelled files into one Dataset.

    Every column other than `text_column` and `group_column` (the register of each text, when the files
    have that column) is a task. With `label_sets` (e.g. the training labels or a checkpoint's), a label
    outside a task's set is an error and the label order is kept."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    texts, per_row, groups = [], [], []
    for path in paths:
        rows = read_rows(path, max_bytes)
        columns = list(rows[0][1])
        if text_column not in columns:
            raise DataError(f"{path}: no {text_column!r} column (columns are: {', '.join(columns)})")
        tasks = [c for c in columns if c not in (text_column, group_column)]
        if not tasks:
            raise DataError(f"{path}: no label columns besides {text_column!r}; add a column per task")
        for line, row in rows:
            text = row[text_column].strip()
            if not text:
                raise DataError(f"{path}: line {line}: empty text")
            labels = {t: row.get(t, "").strip() or None for t in tasks}
            if all(v is None for v in labels.values()):
                raise DataError(f"{path}: line {line}: no label for any task ({', '.join(tasks)})")
            if label_sets:
                for t, v in labels.items():
                    if t not in label_sets:
                        raise DataError(f"{path}: column {t!r} is not a known task ({', '.join(label_sets)})")
                    if v is not None and v not in label_sets[t]:
                        raise DataError(
                            f"{path}: line {line}: label {v!r} is not in the label set of task {t!r} "
                            f"({', '.join(label_sets[t])})"
                        )
            texts.append(text)
            per_row.append(labels)
            groups.append(row.get(group_column, "").strip() or None if group_column else None)
            if max_rows is not None and len(texts) > max_rows:
                raise DataError(f"{path}: more than {max_rows} rows, over the limit")
    all_tasks = list(dict.fromkeys(t for labels in per_row for t in labels))
    labels = {t: [row.get(t) for row in per_row] for t in all_tasks}
    sets = {}
    for t in all_tasks:
        present = sorted({v for v in labels[t] if v is not None})
        sets[t] = list(label_sets[t]) if label_sets and t in label_sets else present
        if len(sets[t]) < 2:
            names = ", ".join(str(p) for p in paths)
            raise DataError(
                f"{names}: task {t!r} has only {len(sets[t])} distinct label(s) "
                f"({', '.join(sets[t])}); a task needs 2 or more"
            )
    return Dataset(texts, labels, sets, groups if any(g is not None for g in groups) else None)


def load_texts(
    path, text_column: str = TEXT_COLUMN, max_rows: int | None = None, max_bytes: int | None = None
) -> list[str]:
    """Texts to predict or encode: a .txt file (one per line) or the text column of a .csv/.jsonl."""
    path = Path(path)
    if path.suffix.lower() == ".txt":
        lines = read_text(path, max_bytes).splitlines()
        texts = [line.strip() for line in lines if line.strip()]
    else:
        rows = read_rows(path, max_bytes)
        if text_column not in rows[0][1]:
            raise DataError(f"{path}: no {text_column!r} column (columns are: {', '.join(rows[0][1])})")
        texts = []
        for line, row in rows:
            if not row[text_column].strip():
                raise DataError(f"{path}: line {line}: empty text")
            texts.append(row[text_column].strip())
    if not texts:
        raise DataError(f"{path}: no text to process")
    if max_rows is not None and len(texts) > max_rows:
        raise DataError(f"{path}: {len(texts)} texts, over the limit of {max_rows}")
    return texts
