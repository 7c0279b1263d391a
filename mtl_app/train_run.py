"""A training run in the app: the form checked against the demo's limits, then the run itself as a
generator of UI updates (a loss curve that grows while the model trains, validation per epoch), and
Stop. The Train tab (train.py) lays these out; saving is in train_save.py."""

import html
import math
import time

import pandas as pd

from mtl import train as training  # called as training.train, so tests can stand in for the loop
from mtl.config import TASK_SAMPLING, TrainConfig
from mtl.errors import MTLError
from mtl.freeze import apply_freeze, parse_freeze
from mtl.model import new_model
from mtl.shared_weights import share_frozen

from .admission import Listener, Pace
from .context import (
    LOCAL_LIMITS,
    AppContext,
    Session,
    UIError,
    accuracy_line,
    log_exception,
    md_escape,
)
from .freeze_controls import check_frozen, encoder_frozen
from .inputs import expect
from .memory import freed_when_dropped, return_free_memory

MAX_EPOCHS = LOCAL_LIMITS.max_epochs  # the local app's limits; ctx.limits holds those in force
BATCH_SIZES = (8, 16, 32, 64)
LR_ENCODER = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4)
LR_HEADS = (5e-4, 1e-3, 2e-3, 5e-3, 1e-2)
MIN_SENTENCES = 64
DEFAULT_SENTENCES = 1600  # the slider starts here (a 2-epoch fine-tune in about a minute on 2 cores); up to all
PLOT_UPDATES = 150  # loss-curve updates sent per run, at most (plus one per evaluation)
SEED = 42

START_POINTS = [
    ("Pretrained MiniLM + new heads", "pretrained"),
    ("The active model (keep training it)", "active"),
]
SAMPLING = [
    ("joint: every batch trains all tasks", "joint"),
    ("alternate: topic batch, sentiment batch, …", "alternate"),
    ("proportional: tasks drawn by their data size", "proportional"),
    ("temperature: sizes flattened (T = 2)", "temperature"),
]
assert [v for _, v in SAMPLING] == list(TASK_SAMPLING)


def format_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60:02d} s"


def time_limit(ctx: AppContext) -> float:
    """Seconds a run (training, live sweep, live LogME) may take before it is stopped (its work kept)."""
    return min(ctx.max_train_seconds, ctx.limits.train_seconds)


def max_sentences(ctx: AppContext) -> int:
    """Training sentences one run may use: all of data/v2/train.csv, or fewer under ctx.limits."""
    train, _ = ctx.training_data()
    cap = ctx.limits.train_sentences
    return len(train) if cap is None else min(cap, len(train))


def checked_number(name, value, low, high, integer=False, hint=""):
    """A form value as a number within [low, high] (a whole one if `integer`), else a UIError."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UIError(f"{name} must be a number; got {value!r}.") from None
    if not math.isfinite(v) or not low <= v <= high or (integer and not v.is_integer()):
        whole = "a whole number " if integer else ""
        raise UIError(f"{name} must be {whole}between {low:g} and {high:g}.{hint}")
    return int(v) if integer else v


def make_config(ctx: AppContext, frozen, epochs, batch_size, lr_encoder, lr_heads, task_sampling, sentences):
    """Validate the form against the demo's limits: (TrainConfig, frozen list, number of sentences)."""
    frozen = check_frozen(ctx, frozen)
    limits = ctx.limits
    if encoder_frozen(ctx, frozen):  # heads only: cached epochs are a few matrix products
        epochs = checked_number("Epochs", epochs, 1, limits.max_epochs_heads_only, integer=True)
    else:
        more = (
            f" More epochs ({limits.max_epochs_heads_only}) are allowed with the whole encoder frozen, "
            "where an epoch takes well under a second."
        )
        epochs = checked_number("Epochs", epochs, 1, limits.max_epochs, integer=True, hint=more)
    batch_size = checked_number("Batch size", batch_size, 1, max(BATCH_SIZES), integer=True)
    if batch_size not in BATCH_SIZES:
        raise UIError(f"Batch size must be one of {', '.join(map(str, BATCH_SIZES))}.")
    lr_encoder = checked_number("Encoder learning rate", lr_encoder, min(LR_ENCODER), max(LR_ENCODER))
    lr_heads = checked_number("Head learning rate", lr_heads, min(LR_HEADS), max(LR_HEADS))
    sentences = checked_number("Training sentences", sentences, MIN_SENTENCES, max_sentences(ctx), integer=True)
    if task_sampling not in TASK_SAMPLING:
        raise UIError(f"Task mixing must be one of {', '.join(TASK_SAMPLING)}.")
    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr_encoder=lr_encoder,
        lr_heads=lr_heads,
        freeze=",".join(frozen) if frozen else "none",
        task_sampling=task_sampling,
        seed=SEED,
    )
    return config, frozen, sentences


class RunView:
    """Turns training events into what the Train tab shows."""

    def __init__(self, tasks, sentences: int, val_size: int):
        self.tasks, self.sentences, self.val_size = list(tasks), sentences, val_size
        self.loss_rows, self.val_rows = [], []
        self.total = self.epochs = self.step = self.epoch = 0
        self.first_step_at = self.done = self.error = self.crashed = None
        self.t0 = time.monotonic()

    def on(self, ev: dict, stopping: bool = False) -> None:
        kind = ev["type"]
        if kind == "start":
            self.total, self.epochs = ev["steps"], ev["epochs"]
        elif kind == "step":
            self.step, self.epoch = ev["step"], ev["epoch"]
            self.first_step_at = self.first_step_at or time.monotonic()
            self.loss_rows += [(ev["step"], round(v, 5), t) for t, v in ev["losses"].items()]
        elif kind == "eval":
            label = "start (no training)" if ev["step"] == 0 else str(ev["epoch"]) + (" (stopped)" if stopping else "")
            row = {"epoch": label, "step": ev["step"]}
            for t, m in ev["metrics"].items():
                row[f"{t} acc."] = f"{m['accuracy']:.1%}"
                row[f"{t} F1"] = f"{m['macro_f1']:.3f}"
            row["best"] = "★" if ev.get("best") else ""
            self.val_rows.append(row)
        elif kind == "error":
            self.error = ev["message"]
        elif kind == "done":
            self.done = ev

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.total // max(1, self.epochs))

    def loss_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.loss_rows, columns=["step", "loss", "task"])
        return frame.astype({"step": "int64", "loss": "float64", "task": "str"})  # numeric axes, even when empty

    def plot_frame(self) -> pd.DataFrame | None:
        """The loss table for gr.LinePlot, or None until every task has a point: the plot fixes its
        colour legend from the first data it draws (an empty table, or one task only, would hide the
        other tasks' lines for the whole run)."""
        if not {t for _, _, t in self.loss_rows} >= set(self.tasks):
            return None
        return self.loss_frame()

    def val_frame(self) -> pd.DataFrame:
        cols = ["epoch", "step"] + [f"{t} {m}" for t in self.tasks for m in ("acc.", "F1")] + ["best"]
        return pd.DataFrame(self.val_rows, columns=cols)

    def progress(self, state: str = "running", note: str = "") -> str:
        frac = 1.0 if state == "done" else (self.step / self.total if self.total else 0.0)
        if state == "running" and self.total:
            head = f"Epoch {max(self.epoch, 1)} of {self.epochs} · step {self.step} of {self.total}"
            if self.first_step_at and self.step > 1:
                per_step = (time.monotonic() - self.first_step_at) / (self.step - 1)
                note = note or f"about {format_seconds(per_step * (self.total - self.step))} left"
        else:
            head = {"running": "Preparing", "done": "Finished", "stopped": "Stopped", "error": "Stopped"}[state]
            head += f" · {self.step} of {self.total} steps" if self.total else ""
        elapsed = format_seconds(time.monotonic() - self.t0)
        return progress_html(frac, head, f"{note} · {elapsed} elapsed" if note else f"{elapsed} elapsed", state)


def progress_html(frac: float, head: str, foot: str, state: str = "idle") -> str:
    pct = max(0.0, min(1.0, frac)) * 100
    return (
        f'<div class="mtl-progress mtl-{state}"><div class="mtl-progress-head"><span>{html.escape(head)}</span>'
        f"<span>{pct:.0f}%</span></div>"
        f'<div class="mtl-bar"><div style="width:{pct:.1f}%"></div></div>'
        f'<div class="mtl-progress-foot">{html.escape(foot)}</div></div>'
    )


IDLE_PROGRESS = progress_html(0, "No training yet", "Choose what to freeze and the options, then press Start.")


def waiting_status(ahead: int, what: str = "training run") -> str:
    runs = "1 run" if ahead == 1 else f"{ahead} runs"
    return f"Waiting for a training slot: {runs} ahead of your {what} (runs take turns on this demo; Stop cancels)…"


def stop_training(session: Session) -> str:
    if session.running or session.pending:
        session.stop.set()
        return "■ Stopping after the current step; the model trained so far is kept."
    return "No training run to stop."


def run_update(view: RunView, state, status, note="", final=False, adopted=False) -> dict:
    """One update of the Train tab: {progress, loss, plot, val, status, final, adopted}."""
    return {
        "progress": view.progress(state, note),
        "loss": view.loss_frame(),
        "plot": view.plot_frame(),
        "val": view.val_frame(),
        "status": status,
        "final": final,
        "adopted": adopted,
    }


def run_training(
    ctx,
    session,
    choice,
    start,
    frozen,
    epochs,
    batch_size,
    lr_encoder,
    lr_heads,
    task_sampling,
    sentences,
    request=None,
):
    """Train a fresh model for this session, yielding UI updates (run_update: plot is the loss table,
    or None while the plot must stay empty).

    The run first takes a place at the training slots (ctx.admit_training), waiting its turn there,
    and is dropped before it starts when its visitor has gone (`request`, the gr.Request, tells).
    The model is a private copy (the active model, deep-copied) or new heads on the pretrained base;
    the default model and other sessions' models are never touched. At the end it becomes the
    session's model, unless nothing was trained."""
    try:
        if session.running:
            raise UIError("This session is already training: wait for the run to end or press Stop.")
        start = expect(start, "text", "Start from")
        if start not in {value for _, value in START_POINTS}:
            raise UIError("Choose where to start from: the pretrained model or the active model.")
        config, frozen, n = make_config(ctx, frozen, epochs, batch_size, lr_encoder, lr_heads, task_sampling, sentences)
        ticket = ctx.admit_training(session, "training run")
    except MTLError:
        if not any(t.session is session for t in ctx.training_gate.tickets()):
            session.pending = False  # the run never starts, so Start works again
        raise
    train_data, val = ctx.training_data()
    view = RunView(train_data.tasks, n, len(val))
    session.pending = True  # Stop cancels it while it waits
    listener = Listener(request)
    with ticket:
        try:
            for ahead in ticket.waiting(session.stop, listener):
                yield run_update(view, "running", waiting_status(ahead), note="queued")
            if ticket.abandoned or not listener.confirmed():
                return  # nobody is listening: the run is dropped before it does any work
            yield from _run(ctx, session, view, choice, start, config, frozen, n, listener)
        finally:
            session.running = session.pending = False
            session.stop.clear()
            return_free_memory()  # what the run allocated and freed goes back to the system


def _run(ctx, session, view, choice, start, config, frozen, n, listener):
    """The run itself, once it holds a training slot."""
    train_data, val = ctx.training_data()
    session.running, view.t0 = True, time.monotonic()  # time counts from the slot, not from the queue
    try:
        if session.stop.is_set():
            yield run_update(view, "stopped", "■ Cancelled before it started; nothing changed.", final=True)
            return
        yield run_update(view, "running", "Building the model…", note="loading weights")
        if start == "active":
            model = ctx.copy_model(choice, session)
        else:
            model = new_model(train_data.tasks, ctx.base_config(), device=ctx.device, seed=SEED)
        freed_when_dropped(model)
        # frozen weights equal to a held model's are held once (the loop freezes the same way again)
        apply_freeze(model, parse_freeze(config.freeze, model))
        share_frozen(model, *ctx.held_models())
        pace = Pace(ctx, session.stop, time_limit(ctx), listener)  # a visitor gone: the run stops
        events = training.train(model, train_data.sample(n, SEED), val, config, stop=pace)
        yield from _updates(ctx, pace, view, events, frozen)
        if pace.abandoned:
            return  # nobody reads its updates: the model is dropped, no session takes another's place
        if view.crashed:
            yield run_update(view, "error", view.crashed, final=True)
            return
        yield run_outcome(ctx, session, view, model, config, frozen, pace.timed_out)
    except MTLError:
        raise
    except Exception as e:  # building the model, copying it, ...: this user sees it, the app serves on
        log_exception("training")
        yield run_update(view, "error", crash_message(e), final=True)


def _updates(ctx: AppContext, pace: Pace, view: RunView, events, frozen):
    """The training events as UI updates, at most about PLOT_UPDATES of them plus one per epoch (the
    loop itself pauses before each step while visitors are predicting: `pace` is its stop)."""
    every, last_yield = 1, 0.0
    training_on = f"Training on {view.sentences:,} sentences…"
    for ev in _guarded(events, view):
        kind = ev["type"]
        view.on(ev, stopping=pace.stopped)
        if kind == "start":
            every = max(1, math.ceil(ev["steps"] / PLOT_UPDATES))
            note = "computing the frozen layers once for all sentences" if frozen else "first step"
            yield run_update(view, "running", training_on, note=note)
        elif kind == "cache":
            yield run_update(view, "running", training_on, note="first step")
        elif kind == "step":
            end_of_epoch = ev["step"] % view.steps_per_epoch == 0
            due = ev["step"] % every == 0 and time.monotonic() - last_yield >= ctx.update_seconds
            if end_of_epoch or due or pace.stopped:
                last_yield = time.monotonic()
                note = f"checking accuracy on {view.val_size} validation sentences" if end_of_epoch else ""
                yield run_update(view, "running", training_on, note=note)
        elif kind in ("eval", "error"):
            yield run_update(view, "running", training_on)


def crash_message(e: BaseException) -> str:
    first = (str(e).strip().splitlines() or [""])[0][:300]
    return (
        f"⚠ **Training failed**: {md_escape(type(e).__name__)}: {md_escape(first)}. The run was abandoned; "
        "your active model is unchanged, and the app keeps serving (other visitors are not affected)."
    )


def _guarded(events, view: RunView):
    """The training events; an exception inside the training loop ends them with view.crashed set."""
    try:
        yield from events
    except MTLError as e:
        view.crashed = f"⚠ {md_escape(str(e))} Your active model is unchanged."
    except Exception as e:
        log_exception("training")
        view.crashed = crash_message(e)
    finally:
        events.close()


def run_outcome(ctx, session, view: RunView, model, config, frozen, timed_out) -> dict:
    """The run's last update; the trained model becomes the session's model unless nothing was trained."""
    done = view.done or {}
    best = done.get("best_metrics")
    if done.get("eval_only"):
        status = (
            "❄ **Everything is frozen, so there was nothing to train**: no training loop ran. "
            f"The starting model as it is: {accuracy_line(best)}. Unfreeze a component to train. "
            "Your active model is unchanged."
        )
        return run_update(view, "done", status, note="evaluation only", final=True)
    if done.get("failed") and not best:
        status = (
            f"⚠ {md_escape(view.error)}. No epoch had finished, so this run's model is dropped: "
            "your active model is unchanged."
        )
        return run_update(view, "error", status, final=True)
    if done.get("steps", 0) == 0:
        return run_update(view, "stopped", "■ Stopped before the first step: nothing was trained.", final=True)
    run = {
        "config": config,
        "frozen": frozen,
        "metrics": best,
        "steps": done["steps"],
        "seconds": done["seconds"],
        "sentences": view.sentences,
        "stopped": done["stopped"],
    }
    ctx.adopt(session, model, run)
    kept = (
        "It is now **your active model** in the Predict and Embeddings tabs (“(this session's trained model)” "
        "in the picker at the top); other visitors do not see it. Save it below to keep it."
    )
    if done.get("failed"):
        head, state = f"⚠ {md_escape(view.error)}", "error"
    elif timed_out:
        head, state = f"**Time limit reached** ({format_seconds(time_limit(ctx))} per run on this demo).", "stopped"
    elif done["stopped"]:
        head, state = f"■ **Stopped** after {done['steps']} of {view.total} steps.", "stopped"
    else:
        head, state = f"✓ **Training finished**: {done['steps']} steps in {format_seconds(done['seconds'])}.", "done"
    status = f"{head} {accuracy_line(best, 'Validation accuracy (best epoch): ')}.  \n{kept}"
    return run_update(view, state, status, final=True, adopted=True)
