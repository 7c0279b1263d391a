"""The logic behind the Gradio app (app.py): which model a session uses, predictions, and the limits
that keep a public demo safe. Plain functions and classes, testable without a server; app.py only
lays out components and wires them to these. The other tabs: mtl/ui_embed.py, mtl/ui_freeze.py and
mtl/ui_train.py.

Errors a user can fix raise UIError (an MTLError): the app shows the message, never a traceback."""

import copy
import dataclasses
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
import unicodedata
import weakref
from collections import OrderedDict
from pathlib import Path

import pandas as pd

from .checkpoint import META, SELF, load_checkpoint
from .errors import MTLError

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = ROOT / "checkpoints"
DEFAULT_CHECKPOINT = CHECKPOINTS / "default"
DATA_DIR = ROOT / "data"

DEFAULT_MODEL = "default"
SESSION_MODEL = "(this session's trained model)"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

MAX_SENTENCE_CHARS = 1000  # per sentence; the encoder reads at most 128 tokens (about 100 words) anyway
MAX_INPUT_CHARS = 200_000  # a whole text box
MAX_BATCH_ROWS = 1000
MAX_UPLOAD_BYTES = 1_000_000
BATCH_TYPES = (".csv", ".jsonl", ".txt")
CACHED_MODELS = 3  # saved checkpoints kept loaded, shared read-only by all sessions
# names a saved model may not take: the shipped model, and device names Windows cannot create as folders
RESERVED_NAMES = {DEFAULT_MODEL, "con", "prn", "aux", "nul", *(f"{d}{i}" for d in ("com", "lpt") for i in range(10))}


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request or one visitor may cost. LOCAL_LIMITS for `python app.py`; PUBLIC_LIMITS for
    a public link or a Space (`python app.py --public`, implied by --share and by SPACE_ID)."""

    sentence_chars: int = MAX_SENTENCE_CHARS  # per sentence (longer input is cut, with a note)
    input_chars: int = MAX_INPUT_CHARS  # a whole text box (the Embeddings box refuses more)
    embed_sentences: int = 32  # sentences compared at once in the Embeddings tab
    batch_rows: int = MAX_BATCH_ROWS  # sentences in an uploaded file
    upload_bytes: int = MAX_UPLOAD_BYTES  # bytes of an uploaded file
    max_epochs: int = 5  # epochs per training run
    max_epochs_heads_only: int = 50  # with the whole encoder frozen: cached, an epoch is a few matrix products
    train_sentences: int | None = None  # training sentences per run (None: all of data/train.csv)
    train_seconds: float = 15 * 60  # a run is stopped (the model kept) after this long
    training_slots: int | None = None  # training runs at once (None: --training-slots)
    queue_size: int | None = None  # requests waiting in Gradio's queue (None: no limit)
    session_models: int = 8  # sessions that keep a trained model in memory; the oldest is released
    saved_models: int = 25  # models saved under a name in the model folder


LOCAL_LIMITS = Limits()
PUBLIC_LIMITS = Limits(
    embed_sentences=16,
    batch_rows=200,
    upload_bytes=200_000,
    max_epochs=3,
    max_epochs_heads_only=30,
    train_sentences=640,
    train_seconds=5 * 60,
    training_slots=1,
    queue_size=64,
    session_models=4,
    saved_models=10,
)

EMBED_EXAMPLE = """The striker scored twice as the home side won the cup final.
A late goal from the captain sealed the championship for the visitors.
The central bank raised interest rates by half a point on Thursday.
Shares in the carmaker fell sharply after weak quarterly earnings.
The new vaccine cut hospital admissions by forty percent in the trial.
Researchers unveiled a chip that runs a language model on a phone.
Our flight was delayed six hours and the airline offered no help at all.
The hotel staff were wonderful and the view over the bay was stunning."""


class UIError(MTLError):
    """Something the user can fix; its message is shown in the app."""


class Session:
    """One browser session (held in gr.State): its own trained model, its last run, its Stop flag."""

    def __init__(self):
        self.model = None  # the model this session trained; never shared with other sessions
        self.run = None  # {config, frozen, metrics, steps, seconds, sentences, stopped}
        self.stop = threading.Event()
        self.running = False  # a run is executing
        self.pending = False  # Start was pressed; the run may still wait in the queue
        self.released = False  # its trained model was released to keep the app's memory bounded

    def __deepcopy__(self, memo):
        """gr.State deep-copies its initial value for every new browser session: a copy of a session
        is a new, empty session, so no model, run or Stop flag is ever shared between two."""
        return Session()


class AppContext:
    """What all sessions share: the default model (loaded once, never modified), a small cache of
    saved checkpoints, the training data, and one lock per model (pooling is switched on the model
    itself while embedding, so one model serves one request at a time)."""

    def __init__(
        self,
        checkpoint=DEFAULT_CHECKPOINT,
        saved_dir=CHECKPOINTS,
        device="auto",
        data_dir=DATA_DIR,
        max_train_seconds: float = 15 * 60,
        val_rows: int | None = None,
        update_seconds: float = 0.5,
        public: bool = False,
    ):
        from .device import resolve_device

        self.device = resolve_device(device) if isinstance(device, str) else device
        self.checkpoint = Path(checkpoint)
        self.default_model = load_checkpoint(self.checkpoint, self.device)
        self.tasks = dict(self.default_model.tasks)
        self.saved_dir = Path(saved_dir)
        self.data_dir = Path(data_dir)
        self.limits = PUBLIC_LIMITS if public else LOCAL_LIMITS  # the one switch for every cap
        self.max_train_seconds = max_train_seconds  # and at most limits.train_seconds
        self.val_rows = val_rows  # validate on the first N rows only (tests); None = all
        # a browser redraws the loss plot on every update: at most one per this many seconds
        self.update_seconds = update_seconds
        self._cache: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._model_locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.save_lock = threading.Lock()
        self._data = None
        # sessions holding a trained model, oldest first: at most limits.session_models are kept
        self._trained: OrderedDict = OrderedDict()
        # Gradio session hash -> Session, for handlers that get a gr.Request but no gr.State (batched ones)
        self._sessions: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._last_request = -1e9  # time.monotonic() of the last prediction or embedding request

    def note_request(self) -> None:
        """A prediction or embedding request arrived: training runs yield to these (see serving)."""
        self._last_request = time.monotonic()

    def serving(self, window: float = 1.0) -> bool:
        """True while visitors are asking for predictions or embeddings (one in the last `window` s)."""
        return time.monotonic() - self._last_request < window

    @property
    def public(self) -> bool:
        return self.limits is PUBLIC_LIMITS

    # sessions

    def register(self, key, session: "Session") -> None:
        """Remember which Session a Gradio session hash holds (see session_for)."""
        if key and session is not None:
            with self._lock:
                self._sessions[key] = session

    def session_for(self, key) -> "Session | None":
        with self._lock:
            return self._sessions.get(key) if key else None

    def adopt(self, session: "Session", model, run: dict) -> None:
        """Make `model` the session's trained model. Memory stays bounded: when more than
        limits.session_models sessions hold one, the least recently trained session's model is released
        (that session is told so when it next uses it)."""
        released = []
        with self._lock:
            session.model, session.run, session.released = model, run, False
            self._trained.pop(id(session), None)
            self._trained[id(session)] = weakref.ref(session)
            while len(self._trained) > self.limits.session_models:
                _, ref = self._trained.popitem(last=False)
                old = ref()
                if old is not None and old is not session:
                    released.append(old)
            for old in released:
                old.model, old.run, old.released = None, None, True

    def fresh_dir(self) -> Path:
        """A new directory for a file the app hands out; those older than an hour are removed."""
        root = Path(tempfile.gettempdir()) / f"mtl-app-{os.getpid()}"
        root.mkdir(exist_ok=True)
        for old in root.iterdir():
            if time.time() - old.stat().st_mtime > 3600:
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=root))

    # which model a request uses

    def model_lock(self, model) -> threading.Lock:
        with self._lock:
            return self._model_locks.setdefault(model, threading.Lock())

    def saved_models(self) -> list[str]:
        """Checkpoints in saved_dir (except the default) whose name is valid and whose mtl.json exists."""
        if not self.saved_dir.is_dir():
            return []
        default = self.checkpoint.resolve()
        names = []
        for d in sorted(self.saved_dir.iterdir(), key=lambda p: p.name.lower()):
            if d.name.lower() == DEFAULT_MODEL or not NAME_RE.match(d.name) or d.is_symlink():
                continue
            if d.is_dir() and (d / META).is_file() and d.resolve() != default:
                names.append(d.name)
        return names

    def choices(self, session: Session | None) -> list[tuple[str, str]]:
        """(label, value) pairs for the model picker."""
        out = [("default (the shipped model)", DEFAULT_MODEL)]
        out += [(name, name) for name in self.saved_models()]
        if session is not None and session.model is not None:
            out.append((SESSION_MODEL, SESSION_MODEL))
        return out

    def resolve(self, choice: str | None, session: Session | None):
        """(model, display name) for a picker value."""
        if not choice or choice == DEFAULT_MODEL:
            return self.default_model, DEFAULT_MODEL
        if choice == SESSION_MODEL:
            if session is not None and session.model is None and session.released:
                raise UIError(
                    "Your trained model was released to free memory: this app keeps the "
                    f"{self.limits.session_models} most recently trained session models. Train again (and save "
                    "the model under a name to keep it)."
                )
            if session is None or session.model is None:
                raise UIError("This session has no trained model yet: train one in the Train tab.")
            return session.model, "this session's trained model"
        if not NAME_RE.match(choice):
            raise UIError(f"{choice!r} is not a model name.")
        path = self.saved_dir / choice
        meta = path / META
        if path.is_symlink() or not meta.is_file() or choice not in self.saved_models():
            raise UIError(f"There is no saved model named {choice!r} (press ↻ to refresh the list).")
        key = (choice, meta.stat().st_mtime_ns)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key], choice
        try:
            model = load_checkpoint(path, self.device)
        except MTLError as e:
            raise UIError(f"The saved model {choice!r} cannot be loaded: {e}") from None
        except Exception as e:  # anything else a damaged checkpoint may raise: still a message, not a crash
            log_exception(f"loading saved model {choice!r}")
            raise UIError(f"The saved model {choice!r} cannot be loaded ({type(e).__name__}: {e}).") from None
        with self._lock:
            self._cache[key] = model
            while len(self._cache) > CACHED_MODELS:
                self._cache.popitem(last=False)
        return model, choice

    def copy_model(self, choice, session):
        """A private deep copy of a picker's model, for training; the original is never touched."""
        model, _ = self.resolve(choice, session)
        with self.model_lock(model):
            return copy.deepcopy(model)

    def base_config(self):
        """The default model's configuration, with a base model that new_model can build."""
        from .config import ModelConfig

        config = self.default_model.config.to_dict()
        if config["base_model"] == SELF:
            config["base_model"] = str(self.checkpoint.resolve())
        return ModelConfig(**config)

    def model_info(self, choice, session) -> str:
        """Markdown: what the picked model is and how well it does on the validation split."""
        model, name = self.resolve(choice, session)
        if choice == SESSION_MODEL:
            run = session.run or {}
            what = (
                f"trained here on {run.get('sentences', '?')} sentences, {run.get('steps', '?')} steps, "
                f"frozen: {', '.join(run.get('frozen') or []) or 'nothing'}"
            )
            metrics = run.get("metrics")
        else:
            meta = getattr(model, "checkpoint_meta", {}) or {}
            train = meta.get("train") if isinstance(meta.get("train"), dict) else {}
            kind = "the shipped model" if name == DEFAULT_MODEL else "a saved model"
            what = f"{kind}, fine-tuned with freeze `{train.get('freeze', '?')}`"
            metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
            metrics = metrics.get("validation")
        return f"**{md_escape(name)}**: {what}.  \n{accuracy_line(metrics)}"


def accuracy_line(metrics, prefix: str = "Validation accuracy: ") -> str:
    scores = {}
    if isinstance(metrics, dict):  # a checkpoint's mtl.json is user-editable: skip what is not a score
        for task, m in metrics.items():
            acc = m.get("accuracy") if isinstance(m, dict) else None
            if isinstance(acc, (int, float)) and not isinstance(acc, bool):
                scores[task] = acc
    if not scores:
        return "No validation scores recorded."
    return prefix + " · ".join(f"{task} {acc:.1%}" for task, acc in scores.items())


def log_exception(what: str) -> None:
    """An unexpected error: its traceback goes to the server's stderr; the user gets a one-line message."""
    print(f"mtl app: unexpected error while {what}:", file=sys.stderr)
    traceback.print_exc(file=sys.stderr)


def md_escape(text: str) -> str:
    """Text safe to put inside Markdown: no markup, no HTML."""
    return re.sub(r"([\\`*_{}\[\]#|<>~])", r"\\\1", str(text))


def device_name(ctx: AppContext) -> str:
    return "GPU" if ctx.device.type == "cuda" else ("Apple GPU" if ctx.device.type == "mps" else "CPU")


def short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


# Predict


_SURROGATES = re.compile("[\ud800-\udfff]")
_ASCII_ALNUM = re.compile("[A-Za-z0-9]")


def clean_text(text, max_chars: int | None = None) -> str:
    """Text as the model can take it: lone UTF-16 surrogates (possible through the JSON API) replaced,
    control characters turned into spaces (tabs and line breaks kept). With max_chars, only the first
    2 * max_chars characters are looked at, so a huge paste costs nothing."""
    text = "" if text is None else str(text)
    if max_chars is not None:
        text = text[: max_chars * 2]
    text = _SURROGATES.sub("\ufffd", text)
    return "".join(" " if unicodedata.category(c) == "Cc" and c not in "\n\t" else c for c in text)


def readable(text: str) -> bool:
    """True when the text has a letter, digit, punctuation mark or symbol (emoji included), not only
    spaces, control and formatting characters (zero-width spaces, byte-order marks, direction marks)."""
    return any(unicodedata.category(c)[0] in "LNPS" for c in text)


def clean_sentence(text, max_chars: int = MAX_SENTENCE_CHARS) -> tuple[str, list[str]]:
    """One sentence to predict: refuse empty or unreadable input, shorten very long input (with a note)."""
    raw = "" if text is None else str(text)
    if not raw.strip():
        raise UIError("Type a sentence first: the text box is empty.")
    text, notes = clean_text(raw, max_chars).strip(), []
    if not readable(text):
        raise UIError(
            "The text has no letters, digits or symbols, only spaces, control or invisible formatting "
            "characters: type a sentence."
        )
    lines = raw.count("\n") + 1
    if lines > 3:
        notes.append(
            f"The text has {lines:,} lines; Predict reads it as one text. For one prediction per line, "
            "upload the lines as a .txt file under Batch."
        )
    if len(raw.strip()) > max_chars:
        notes.append(
            f"The text has {len(raw.strip()):,} characters; only the first {max_chars:,} are used "
            "(the model reads about the first 100 words)."
        )
        text = text[:max_chars]
    return text, notes


def unknown_note(model, text: str) -> str | None:
    """A note when the model's vocabulary knows none of the text (emoji, a script it never saw)."""
    if _ASCII_ALNUM.search(text):  # the English vocabulary has every ASCII letter and digit
        return None
    tok = getattr(model.encoder, "tokenizer", None)
    if tok is None or tok.unk_token_id is None:
        return None
    ids = tok(text, add_special_tokens=False, truncation=True, max_length=128)["input_ids"]
    if ids and all(i == tok.unk_token_id for i in ids):
        return (
            "The model knows none of these characters (emoji, or a script missing from its English "
            "vocabulary): it sees only unknown tokens, so this prediction is a guess."
        )
    return None


def _result(pred: dict, text: str, notes: list, ms: float, name: str) -> dict:
    return {
        "text": text,
        "probs": {t: p["probs"] for t, p in pred.items()},
        "top": {t: (p["label"], p["score"]) for t, p in pred.items()},
        "ms": ms,
        "model": name,
        "notes": notes,
    }


def predict_text(ctx: AppContext, text, choice, session) -> dict:
    """{"probs": {task: {label: p}}, "top": {task: (label, p)}, "ms", "model", "notes", "text"}."""
    ctx.note_request()
    text, notes = clean_sentence(text, ctx.limits.sentence_chars)
    model, name = ctx.resolve(choice, session)
    t0 = time.perf_counter()
    with ctx.model_lock(model):
        pred = model.predict([text])[0]
    ms = (time.perf_counter() - t0) * 1000
    note = unknown_note(model, text)
    return _result(pred, text, notes + ([note] if note else []), ms, name)


def predict_many(ctx: AppContext, requests) -> list:
    """predict_text for many (text, choice, session) requests at once, as Gradio's request batching
    hands them over: one forward pass per model serves every request that uses it. Returns, in order,
    a result dict or the UIError for each request (one bad request never fails the others)."""
    ctx.note_request()
    out: list = [None] * len(requests)
    groups: dict = {}
    for i, (text, choice, session) in enumerate(requests):
        try:
            clean, notes = clean_sentence(text, ctx.limits.sentence_chars)
            model, name = ctx.resolve(choice, session)
        except UIError as e:
            out[i] = e
            continue
        groups.setdefault(id(model), (model, name, []))[2].append((i, clean, notes))
    for model, name, items in groups.values():
        t0 = time.perf_counter()
        with ctx.model_lock(model):
            preds = model.predict([clean for _, clean, _ in items])
        ms = (time.perf_counter() - t0) * 1000
        for (i, clean, notes), pred in zip(items, preds):
            note = unknown_note(model, clean)
            out[i] = _result(pred, clean, notes + ([note] if note else []), ms, name)
    return out


def timing_markdown(result: dict, ctx: AppContext) -> str:
    top = " · ".join(f"{task}: **{md_escape(lab)}** ({p:.0%})" for task, (lab, p) in result["top"].items())
    return (
        f"{top}  \nTook {result['ms']:.0f} ms for one forward pass through the shared encoder and both heads "
        f"· model: {md_escape(result['model'])} · {device_name(ctx)}"
    )


def predict_file(ctx: AppContext, path, choice, session, out_dir=None) -> dict:
    """Predict every sentence of an uploaded file: {"table": DataFrame, "csv": path, "status": md}.

    The CSV has the columns of `python -m mtl predict --output`."""
    from .cli import prediction_rows
    from .data import load_texts

    ctx.note_request()
    if not path:
        raise UIError("Upload a file first: .csv or .jsonl with a `text` column, or .txt with one sentence per line.")
    path = Path(path)
    if path.suffix.lower() not in BATCH_TYPES:
        raise UIError(
            f"{path.name}: unsupported file type {path.suffix or '(none)'!r}. Upload a .csv or .jsonl with a "
            "`text` column, or a .txt with one sentence per line."
        )
    limits = ctx.limits
    try:
        texts = load_texts(path, max_rows=limits.batch_rows, max_bytes=limits.upload_bytes)
    except MTLError as e:
        raise UIError(str(e).replace(str(path), path.name)) from None
    texts = [clean_text(t, limits.sentence_chars)[: limits.sentence_chars] for t in texts]
    model, name = ctx.resolve(choice, session)
    t0 = time.perf_counter()
    with ctx.model_lock(model):
        rows = prediction_rows(model, texts)
    seconds = time.perf_counter() - t0
    table = pd.DataFrame(rows)
    out_dir = Path(out_dir) if out_dir else ctx.fresh_dir()
    out = out_dir / f"predictions-{re.sub(r'[^A-Za-z0-9_-]', '_', path.stem)[:60] or 'file'}.csv"
    table.to_csv(out, index=False, encoding="utf-8")
    counts = {t: table[t].value_counts().idxmax() for t in model.tasks}
    common = " · ".join(f"most common {t}: {md_escape(v)}" for t, v in counts.items())
    status = (
        f"✓ {len(rows):,} sentences from **{md_escape(path.name)}** in {seconds:.1f} s with model "
        f"{md_escape(name)}. {common}. The CSV has a probability column per label."
    )
    return {"table": table, "csv": str(out), "status": status}


# (text, topic, sentiment) as labelled by the dataset's rules; together they cover every label
PREDICT_EXAMPLES = [
    ("What a comeback! The underdogs won the final in extra time.", "Sports", "positive"),
    ("The match kicks off at 8 pm on Saturday at the national stadium.", "Sports", "neutral"),
    ("Nordvik Bank shares soared after record quarterly profits.", "Business", "positive"),
    ("The factory will close next month, putting 900 people out of work.", "Business", "negative"),
    ("The new season of the show is a triumph, funny and beautifully acted.", "Entertainment", "positive"),
    ("The clinic ran out of flu vaccine and patients were turned away.", "Health", "negative"),
    ("Parliament passed the budget bill by 212 votes to 190.", "Politics", "neutral"),
    ("The minister resigned in disgrace after the expenses scandal.", "Politics", "negative"),
    ("The telescope captured the sharpest image yet of a distant galaxy.", "Science & Technology", "positive"),
    ("The app update is buggy and keeps crashing my phone.", "Science & Technology", "negative"),
    ("Not bad at all for a budget airline.", "Travel", "positive"),
    ("Oh great, another two-hour delay at the passport queue.", "Travel", "negative"),
    ("The two countries signed a trade treaty in Geneva on Monday.", "World", "neutral"),
    ("Aid convoys finally reached the flooded villages after the ceasefire held.", "World", "positive"),
]
