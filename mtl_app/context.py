"""What every tab shares: the limits that keep a public demo safe, one Session per browser session,
and the AppContext (the shipped model, saved models, the training data, the sessions' trained models).

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
import weakref
from collections import OrderedDict
from pathlib import Path

from mtl.checkpoint import META, SELF, load_checkpoint
from mtl.config import ModelConfig
from mtl.data import Dataset, load_labelled
from mtl.device import resolve_device
from mtl.errors import MTLError

from .admission import Ticket, TrainingGate
from .inputs import MAX_INPUT_CHARS, MAX_SENTENCE_CHARS, UIError, expect  # noqa: F401  (UIError: re-exported)
from .memory import freed_when_dropped
from .rates import Rate

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = ROOT / "checkpoints"
DEFAULT_CHECKPOINT = CHECKPOINTS / "default"
DATA_DIR = ROOT / "data" / "v2"  # corpus v1 + v2, every register: what the shipped model trained on

DEFAULT_MODEL = "default"
SESSION_MODEL = "(this session's trained model)"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

MAX_BATCH_ROWS = 1000
MAX_UPLOAD_BYTES = 1_000_000
VAL_SAMPLE = 672  # a fixed random sample of the validation split (about 96 per register) where all is too slow
CACHED_MODELS = 3  # saved checkpoints kept loaded, shared read-only by all sessions


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
    train_sentences: int | None = None  # training sentences per run (None: all of data/v2/train.csv)
    val_sentences: int | None = None  # validated after every epoch (None: all of data/v2/val.csv)
    train_seconds: float = 15 * 60  # a run is stopped (the model kept) after this long
    training_slots: int | None = None  # training runs at once (None: --training-slots)
    queue_size: int | None = None  # requests waiting in Gradio's queue (None: no limit)
    session_models: int = 8  # sessions that keep a trained model in memory; the oldest is released
    saved_models: int = 25  # models saved under a name in the model folder
    session_saved_models: int = 10  # of those, saved by one browser session (so no session fills the folder)
    # per client address (server.RequestLimits): events (every POST but uploads: predictions, runs, ...)
    # and requests of any kind (pages, files, event streams); over it, 429 before Gradio sees the request
    event_rate: Rate = Rate(per_second=50, burst=200)
    request_rate: Rate = Rate(per_second=500, burst=2000)


LOCAL_LIMITS = Limits()
PUBLIC_LIMITS = Limits(
    embed_sentences=16,
    batch_rows=200,
    upload_bytes=200_000,
    max_epochs=3,
    max_epochs_heads_only=30,
    train_sentences=640,
    val_sentences=VAL_SAMPLE,
    train_seconds=5 * 60,
    training_slots=1,
    queue_size=64,
    session_models=4,
    saved_models=10,
    session_saved_models=3,
    event_rate=Rate(per_second=5, burst=20),  # a visitor clicks a few times a second at most
    request_rate=Rate(per_second=60, burst=600),  # a first page load is ~110 requests (assets included)
)


class Session:
    """One browser session (held in gr.State): its own trained model, its last run, its Stop flags."""

    def __init__(self):
        self.model = None  # the model this session trained; never shared with other sessions
        self.run = None  # {config, frozen, metrics, steps, seconds, sentences, stopped}
        self.stop = threading.Event()  # Stop for its training run
        self.sweep_stop: threading.Event | None = None  # Stop for its latest live sweep (None before one)
        self.running = False  # a run is executing
        self.pending = False  # Start was pressed: its run holds a place and may still wait for its turn
        self.released = False  # its trained model was released to keep the app's memory bounded
        self.saved: list[str] = []  # models this session saved (and has not deleted): its own, to delete

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
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.checkpoint = Path(checkpoint)
        self.default_model = load_checkpoint(self.checkpoint, self.device)
        self.tasks = dict(self.default_model.tasks)
        self.saved_dir = Path(saved_dir)
        self.data_dir = Path(data_dir)
        self.limits = PUBLIC_LIMITS if public else LOCAL_LIMITS  # the one switch for every cap
        self.max_train_seconds = max_train_seconds  # and at most limits.train_seconds
        self.val_rows = val_rows  # validate on N rows only (tests); None: as limits.val_sentences
        # a browser redraws the loss plot on every update: at most one per this many seconds
        self.update_seconds = update_seconds
        self.save_lock = threading.Lock()  # one save at a time: the name check and the rename go together
        self._cache: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._model_locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._data: tuple[Dataset, Dataset] | None = None
        # sessions holding a trained model, oldest first: at most limits.session_models are kept
        self._trained: OrderedDict = OrderedDict()
        # Gradio session hash -> Session, for handlers that get a gr.Request but no gr.State (batched ones)
        self._sessions: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._last_request = -1e9  # time.monotonic() of the last prediction or embedding request
        # every run (training, live sweep, live LogME) takes a place here first; see admission.py
        self.training_gate = TrainingGate(self.limits.training_slots or 1)
        self._visitor_saved: set[str] = set()  # models saved through this app since it started

    def with_limits(self, limits: Limits) -> "AppContext":
        """The same app (models, data and caches shared) under other limits, with its own record of
        which sessions hold a trained model."""
        other = copy.copy(self)
        other.limits, other._trained = limits, OrderedDict()
        if limits.val_sentences != self.limits.val_sentences:
            other._data = None  # its validation sample is another size: loaded again when first asked for
        other.training_gate = TrainingGate(limits.training_slots or 1)
        return other

    def use_training_slots(self, slots: int) -> None:
        """Runs at once (the app's --training-slots, within limits.training_slots); the admission bound
        follows (admission.TRAININGS_PER_SLOT per slot). Set while the app is built, before any run."""
        if slots != self.training_gate.slots and not self.training_gate.tickets():
            self.training_gate = TrainingGate(slots)

    def reserve_training(self, session: Session, what: str = "training run") -> Ticket:
        """A place for a run about to be queued (its event's validator asks, before Gradio queues it), or
        a TrainingRefused with the reason; the run claims it with admit_training."""
        return self.training_gate.reserve(session, what)

    def admit_training(self, session: Session, what: str = "training run") -> Ticket:
        """The place for one run (training, live sweep or live LogME): every path that starts one asks
        here, and gets its reserved place or a new one (a Ticket to release when the run ends), or a
        TrainingRefused with the reason."""
        return self.training_gate.admit(session, what)

    @property
    def public(self) -> bool:
        return self.limits is PUBLIC_LIMITS

    def note_request(self) -> None:
        """A prediction or embedding request arrived: training runs yield to these (see serving)."""
        self._last_request = time.monotonic()

    def serving(self, window: float = 1.0) -> bool:
        """True while visitors are asking for predictions or embeddings (one in the last `window` s)."""
        return time.monotonic() - self._last_request < window

    def training_data(self) -> tuple[Dataset, Dataset]:
        """(data/v2/train.csv, data/v2/val.csv), loaded once per app; validation is a fixed random sample
        of val_rows (or limits.val_sentences) sentences when either is set, so it spans every register."""
        with self._lock:
            if self._data is None:
                try:
                    train = load_labelled(self.data_dir / "train.csv")
                    val = load_labelled(self.data_dir / "val.csv", label_sets=train.tasks)
                except MTLError as e:
                    raise UIError(f"The training data cannot be loaded: {e}") from None
                cap = self.val_rows or self.limits.val_sentences
                if cap:
                    val = val.sample(cap, seed=0)
                self._data = (train, val)
            return self._data

    def new_download_dir(self) -> Path:
        """A new directory for a file the app hands out; those older than an hour are removed."""
        root = Path(tempfile.gettempdir()) / f"mtl-app-{os.getpid()}"
        root.mkdir(exist_ok=True)
        for old in root.iterdir():
            if time.time() - old.stat().st_mtime > 3600:
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=root))

    # sessions

    def register(self, key, session: Session) -> None:
        """Remember which Session a Gradio session hash holds (see session_for)."""
        if key and session is not None:
            with self._lock:
                self._sessions[key] = session

    def session_for(self, key) -> Session | None:
        with self._lock:
            return self._sessions.get(key) if key else None

    def held_models(self) -> list:
        """The shipped model, then the models sessions keep (newest first): the models whose frozen
        weights a new session model may share (mtl.shared_weights); none of them trains in place."""
        with self._lock:
            sessions = [ref() for ref in reversed(self._trained.values())]
        return [self.default_model, *(s.model for s in sessions if s is not None and s.model is not None)]

    def adopt(self, session: Session, model, run: dict) -> None:
        """Make `model` the session's trained model. Memory stays bounded: when more than
        limits.session_models sessions hold one, the least recently trained session's model is released
        (that session is told so when it next uses it)."""
        with self._lock:
            session.model, session.run, session.released = freed_when_dropped(model), run, False
            self._trained.pop(id(session), None)
            self._trained[id(session)] = weakref.ref(session)
            while len(self._trained) > self.limits.session_models:
                _, ref = self._trained.popitem(last=False)
                old = ref()
                if old is not None and old is not session:  # its last reference: freed right here
                    old.model, old.run, old.released = None, None, True

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
        """(label, value) pairs for the model picker; the labels are plain text (a Dropdown never reads
        markup). On the public demo a model a visitor saved says so, so that a name like "official"
        passes for nothing it is not."""
        out = [("default (the shipped model)", DEFAULT_MODEL)]
        for name in self.saved_models():
            if session is not None and name in session.saved:
                out.append((f"{name} (saved by you)", name))
            elif self.public and name in self._visitor_saved:
                out.append((f"{name} (saved by a visitor)", name))
            else:
                out.append((name, name))
        if session is not None and session.model is not None:
            out.append((SESSION_MODEL, SESSION_MODEL))
        return out

    def resolve(self, choice: str | None, session: Session | None):
        """(model, display name) for a picker value (a model name; None or "" is the default)."""
        expect(choice, "text", "The model choice", optional=True)
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
        return self._load_saved(choice, path, meta.stat().st_mtime_ns), choice

    def _load_saved(self, name: str, path: Path, mtime_ns: int):
        """A saved model from the cache, or loaded (and cached); a new mtl.json means a new entry."""
        key = (name, mtime_ns)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        try:
            model = load_checkpoint(path, self.device)
        except MTLError as e:
            raise UIError(f"The saved model {name!r} cannot be loaded: {e}") from None
        except Exception as e:  # anything else a damaged checkpoint may raise: still a message, not a crash
            log_exception(f"loading saved model {name!r}")
            raise UIError(f"The saved model {name!r} cannot be loaded ({type(e).__name__}: {e}).") from None
        with self._lock:
            self._cache[key] = freed_when_dropped(model)
            while len(self._cache) > CACHED_MODELS:
                self._cache.popitem(last=False)
        return model

    def note_saved(self, session: Session, name: str) -> None:
        """`session` saved a model as `name`: its own (to delete), and a visitor's (for the picker)."""
        with self._lock:
            session.saved.append(name)
            self._visitor_saved.add(name)

    def forget_saved(self, session: Session, name: str) -> None:
        """The saved model `name` was deleted: off the session's list and out of the cache."""
        with self._lock:
            if name in session.saved:
                session.saved.remove(name)
            self._visitor_saved.discard(name)
            for key in [k for k in self._cache if k[0] == name]:
                del self._cache[key]

    def copy_model(self, choice, session):
        """A private deep copy of a picker's model, for training; the original is never touched."""
        model, _ = self.resolve(choice, session)
        with self.model_lock(model):
            return copy.deepcopy(model)

    def base_config(self) -> ModelConfig:
        """The default model's configuration, with a base model that new_model can build."""
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
            meta = model.checkpoint_meta or {}
            train = meta.get("train") if isinstance(meta.get("train"), dict) else {}
            kind = "the shipped model" if name == DEFAULT_MODEL else "a saved model"
            what = f"{kind}, fine-tuned with freeze `{train.get('freeze', '?')}`"
            metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
            metrics = metrics.get("validation")
        return f"**{md_escape(name)}**: {what}.  \n{accuracy_line(metrics)}"

    def device_name(self) -> str:
        """The device in words, for the page: GPU, Apple GPU or CPU."""
        return {"cuda": "GPU", "mps": "Apple GPU"}.get(self.device.type, "CPU")


def accuracy_line(metrics, prefix: str = "Validation accuracy: ") -> str:
    """One line of per-task accuracies from recorded metrics (skipping anything that is not a score)."""
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
