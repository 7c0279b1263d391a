"""The Experiments tab: the committed sweep results as charts and tables (results_view.py), the LogME
scores, and what a visitor can run within the demo's limits: a small sweep, or LogME of every layer of
the model chosen at the top."""

import threading
import time

import gradio as gr
import numpy as np
import pandas as pd

from mtl.errors import MTLError
from mtl.sweep import run_sweeps
from mtl.transfer import label_arrays, layer_embeddings, task_scores

from .admission import Listener, Pace, reserving
from .context import VAL_SAMPLE, AppContext, Session, UIError, md_escape
from .handlers import shows_errors
from .inputs import expect
from .results_view import (
    bars,
    costs,
    layer_curve,
    load_results,
    logme_agreement_markdown,
    logme_table,
    provenance,
    results_table,
)
from .text import EXPERIMENTS_NOTE, SWEEP_NOTES
from .train_run import format_seconds, time_limit, waiting_status

SWEEP_TITLES = {
    "freeze": "Freeze scenarios",
    "layers": "Layer freezing curve",
    "tasks": "Multi-task vs single-task",
    "mixing": "Task mixing and weighting",
}
LIVE_SWEEPS = tuple(SWEEP_TITLES)
LIVE_MAX_SENTENCES = 512
LIVE_MAX_EPOCHS = 2
LOGME_CHUNK = 64  # sentences encoded per turn on the shared model: a prediction waits at most one chunk


def live_sentence_cap(ctx: AppContext) -> int:
    """Training sentences a visitor's sweep or LogME may use: the public demo's caps apply as in Train."""
    return min(LIVE_MAX_SENTENCES, ctx.limits.train_sentences or LIVE_MAX_SENTENCES)


def checked_sentences(ctx: AppContext, sentences) -> int:
    """Training sentences for a live sweep or LogME within the demo's caps, else a UIError."""
    sentences, most = expect(sentences, "whole number", "Sentences"), live_sentence_cap(ctx)
    if not 64 <= sentences <= most:
        raise UIError(f"Use 64 to {most} sentences here; the command line (`python -m mtl`) takes them all.")
    return sentences


def checked_epochs(ctx: AppContext, epochs) -> int:
    epochs, most = expect(epochs, "whole number", "Epochs"), min(LIVE_MAX_EPOCHS, ctx.limits.max_epochs)
    if not 1 <= epochs <= most:
        raise UIError(f"Use 1 to {most} epochs here; the full sweep runs from the command line.")
    return epochs


def admitted(ctx: AppContext, session, what: str, listener: Listener):
    """Take a place at the training slots for `what` and wait for its turn, yielding a status while
    it waits; returns the Ticket (to release), or None when the run was cancelled or nobody listens."""
    session.sweep_stop = session.sweep_stop or threading.Event()
    ticket = ctx.admit_training(session, what)
    try:
        for ahead in ticket.waiting(session.sweep_stop, listener):
            yield waiting_status(ahead, what)
        if ticket.abandoned or session.sweep_stop.is_set() or not listener.confirmed():
            ticket.release()
            return None
    except BaseException:  # closed while waiting (the visitor left): the place goes back
        ticket.release()
        raise
    return ticket


def live_logme(ctx: AppContext, choice, session, sentences, request=None):
    """LogME of every layer of the chosen model (the shipped one, this session's, or a saved one) on
    a slice of the training data: how fine-tuning moved the linearly usable information. Yields
    (status, table or None). It takes a training slot, encodes LOGME_CHUNK sentences at a time on the
    shared model (which predictions use between chunks) and stops at the training time limit."""
    sentences = checked_sentences(ctx, sentences)
    model, name = ctx.resolve(choice, session)
    train, _ = ctx.training_data()
    data = train.sample(sentences, 0)
    session, listener = session if session is not None else Session(), Listener(request)
    ticket = yield from admitted(ctx, session, "LogME", listener)
    if ticket is None:
        yield "■ Cancelled before it started.", None
        return
    with ticket:
        pace, parts = Pace(ctx, session.sweep_stop, time_limit(ctx), listener), []
        t0 = time.perf_counter()
        for start in range(0, len(data), LOGME_CHUNK):
            if pace.is_set():
                yield stopped_status(pace, f"after {start} of {len(data)} sentences"), None
                return
            with ctx.model_lock(model):
                parts.append(layer_embeddings(model.encoder, data.texts[start : start + LOGME_CHUNK]))
            yield f"LogME of **{md_escape(name)}**: encoded {start + len(parts[-1][0])} of {len(data)} sentences…", None
        layers = [np.concatenate(chunks) for chunks in zip(*parts)]  # per layer: (sentences, dim)
        labels, scores = label_arrays(data), {}
        for k, features in enumerate(layers):
            if pace.is_set():
                yield stopped_status(pace, f"after scoring {k} of {len(layers)} layers"), None
                return
            scores[k] = task_scores(features, labels)
    yield logme_result(name, data, scores, time.perf_counter() - t0)


def stopped_status(pace: Pace, where: str) -> str:
    if pace.timed_out:
        return f"**Time limit reached** ({format_seconds(pace.seconds)} per run on this demo) {where}."
    return f"■ Stopped {where}."


def logme_result(name: str, data, scores: dict, seconds: float) -> tuple[str, pd.DataFrame]:
    rows = [
        {"layer output": "embeddings (0)" if k == 0 else f"layer {k}", **{t: round(v, 4) for t, v in sc.items()}}
        for k, sc in scores.items()
    ]
    best = ", ".join(f"{t}: layer {max(scores, key=lambda k: scores[k][t])}" for t in data.tasks)
    status = (
        f"LogME of **{md_escape(name)}** on {len(data)} training sentences in {seconds:.1f} s. "
        f"Highest score per task: {best} (0 = the embeddings' output)."
    )
    return status, pd.DataFrame(rows)


def run_live_sweep(ctx: AppContext, sweep: str, sentences, epochs, session=None, request=None):
    """A small sweep with one seed on a slice of the training data; yields (status, table or None).
    It takes a training slot, pauses between steps while visitors predict, and stops at the training
    time limit (or Stop) after the current step."""
    sweep = expect(sweep, "text", "The sweep")
    if sweep not in LIVE_SWEEPS:
        raise UIError(f"Choose a sweep: {', '.join(LIVE_SWEEPS)}.")
    sentences, epochs = checked_sentences(ctx, sentences), checked_epochs(ctx, epochs)
    train, val = ctx.training_data()
    train, val = train.sample(sentences, 0), val.sample(VAL_SAMPLE, 0)
    session, listener = session if session is not None else Session(), Listener(request)
    ticket = yield from admitted(ctx, session, "sweep", listener)
    if ticket is None:
        yield "■ Cancelled before it started.", None
        return
    done_runs = []
    with ticket:
        pace = Pace(ctx, session.sweep_stop, time_limit(ctx), listener)
        try:
            runs = run_sweeps([sweep], 1, epochs, train, val, val, stop=pace, model_config=ctx.base_config())
            for kind, payload in runs:
                if kind == "run":
                    done_runs.append(payload)
                    accs = ", ".join(f"{t} {m['accuracy']:.3f}" for t, m in payload["test"].items())
                    status = f"{len(done_runs)} run(s) done; last: **{md_escape(payload['name'])}** ({accs})"
                    yield status, live_table(done_runs)
        except MTLError as e:
            raise UIError(str(e)) from None
    if pace.stopped:
        yield stopped_status(pace, f"after {len(done_runs)} run(s)"), live_table(done_runs)
        return
    yield f"Done: {len(done_runs)} runs ({len(val):,} validation sentences, one seed).", live_table(done_runs)


def empty_live_table(tasks) -> pd.DataFrame:
    """The live sweep's columns before any run, so the table does not open with headers 1 2 3."""
    return pd.DataFrame(columns=["setting", *[f"{t} accuracy" for t in tasks], "trainable params", "time (s)"])


def live_table(runs) -> pd.DataFrame:
    """The live sweep's runs so far: per-task accuracy, trainable parameters, time."""
    rows = []
    for r in runs:
        row = {"setting": r["name"]}
        row.update({f"{t} accuracy": round(m["accuracy"], 3) for t, m in r["test"].items()})
        row["trainable params"] = f"{r['trainable_params']:,}"
        row["time (s)"] = round(r["seconds"], 1)
        rows.append(row)
    return pd.DataFrame(rows)


def _sweep_charts(results: dict | None, sweep: str, tasks: list[str]) -> None:
    """One sweep's sub-tab: its note, the layer curve (layers only), accuracy and cost bars, the table."""
    gr.Markdown(SWEEP_NOTES[sweep])
    if sweep == "layers":
        gr.LinePlot(
            layer_curve(results),
            x="layers frozen (K)",
            y="macro-F1",
            color="task",
            title="Test macro-F1 against layers frozen (-1: none)",
            height=280,
        )
    cost = costs(results, sweep)
    order = list(cost["setting"]) or None  # the sweep's own order, not alphabetical
    with gr.Row():
        accuracy = bars(results, sweep)
        for task in tasks:
            gr.BarPlot(
                accuracy[accuracy["task"] == task],
                x="setting",
                y="accuracy",
                title=f"{task}: test accuracy",
                y_lim=[0, 1],
                x_label_angle=-20,
                sort=order,
                height=260,
            )
    with gr.Row():
        for y, title in (("trainable params (millions)", "Trainable parameters"), ("train time (s)", "Training time")):
            gr.BarPlot(cost, x="setting", y=y, title=title, x_label_angle=-20, sort=order, height=240)
    gr.Dataframe(results_table(results, sweep), wrap=True)


def _logme_section():
    """The LogME sub-tab; returns (sentences slider, Score button, status, scores table)."""
    gr.Markdown(SWEEP_NOTES["logme"])
    gr.Dataframe(logme_table(), wrap=True)
    gr.Markdown(logme_agreement_markdown())
    gr.Markdown(
        "**Score a model yourself.** LogME of every layer of the model chosen at the top "
        "(train one in the Train tab and compare it with the shipped one), in seconds."
    )
    with gr.Row():
        sentences = gr.Slider(64, LIVE_MAX_SENTENCES, value=256, step=64, label="Training sentences")
        button = gr.Button("Score the layers with LogME")
    return sentences, button, gr.Markdown(), gr.Dataframe(wrap=True)


def build_tab(ctx: AppContext, picker: gr.Dropdown, session: gr.State, training_slots: int) -> None:
    """Lay out the Experiments tab and wire it. The live sweep and live LogME take one of the
    `training_slots` that training runs use, admitted the same way (ctx.reserve_training, then
    ctx.admit_training: mtl_app/admission.py)."""
    tasks = list(ctx.tasks)
    results = load_results()
    gr.Markdown(EXPERIMENTS_NOTE)
    gr.Markdown(provenance(results), elem_classes="muted")
    with gr.Tabs():
        for sweep, title in SWEEP_TITLES.items():
            with gr.Tab(title):
                _sweep_charts(results, sweep, tasks)
        with gr.Tab("LogME (no training)"):
            logme_sentences, logme_button, logme_status, logme_out = _logme_section()
    gr.Markdown("### Run a small sweep yourself")
    with gr.Row():
        sweep_name = gr.Dropdown(list(SWEEP_TITLES), value="freeze", label="Sweep")
        sentences = gr.Slider(64, LIVE_MAX_SENTENCES, value=128, step=64, label="Training sentences")
        epochs = gr.Slider(1, LIVE_MAX_EPOCHS, value=1, step=1, label="Epochs")
    with gr.Row():
        run_button = gr.Button("Run the sweep", variant="primary")
        stop_button = gr.Button("Stop")
    status = gr.Markdown()
    table = gr.Dataframe(empty_live_table(tasks), wrap=True)

    @shows_errors(outputs=2, message=0)
    def live_sweep(sweep_name, sentences, epochs, session, request: gr.Request):
        session.sweep_stop = threading.Event()
        for status, table in run_live_sweep(ctx, sweep_name, sentences, epochs, session, request):
            yield status, gr.skip() if table is None else table

    @shows_errors(outputs=2, message=0)
    def logme(choice, session, sentences, request: gr.Request):
        session.sweep_stop = threading.Event()
        for status, table in live_logme(ctx, choice, session, sentences, request):
            yield status, gr.skip() if table is None else table

    def stop_sweep(session):
        if session.sweep_stop is None:
            return "No sweep is running."
        session.sweep_stop.set()
        return "Stopping after the current run."

    ctx.use_training_slots(training_slots)
    # admitted by the context as training runs are: a place before the queue, the turn in the handler
    run_button.click(
        live_sweep,
        [sweep_name, sentences, epochs, session],
        [status, table],
        api_name="sweep",
        validator=reserving(ctx, "sweep", session_at=3, message_at=0),
        concurrency_limit=None,
    )
    logme_button.click(
        logme,
        [picker, session, logme_sentences],
        [logme_status, logme_out],
        api_name="logme",
        validator=reserving(ctx, "LogME", session_at=1, message_at=2),
        concurrency_limit=None,
    )
    stop_button.click(stop_sweep, session, status, api_name="stop_sweep", concurrency_limit=None)
