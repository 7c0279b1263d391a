"""The Predict tab: every label of every task for one sentence (one forward pass through the shared
encoder and all heads), examples, and a whole file at once with a CSV to download."""

import csv
import os
import re
import threading
import time
from collections import deque
from pathlib import Path
from typing import NamedTuple

import gradio as gr
import pandas as pd

from mtl.data import fmt_bytes, load_texts
from mtl.errors import MTLError
from mtl.predictions import prediction_rows, write_predictions_csv

from .context import AppContext, UIError, md_escape
from .handlers import notify, shows_errors, user_message
from .inputs import clean_sentence, clean_text
from .server import discard_upload

PREDICT_BATCH = 16  # visitors' sentences per forward pass: those that wait while a pass runs go together
PREDICT_CONCURRENCY = 16  # prediction requests Gradio runs at once, each waiting for its pass (ForwardPasses)
FILE_CHUNK = 16  # a file's sentences per forward pass: waiting visitors go between two chunks
BATCH_TYPES = (".csv", ".jsonl", ".txt")
_ASCII_ALNUM = re.compile("[A-Za-z0-9]")


class Example(NamedTuple):
    """A Predict example, labelled by the dataset's guide (data/README.md), in one of its registers."""

    text: str
    topic: str
    sentiment: str
    register: str


# written for the app (none is in the corpus; a test checks): together they cover every label, and every
# register has each sentiment, so a visitor sees the styles people type as well as the crafted cases
EXAMPLES_FILE = Path(__file__).with_name("predict_examples.csv")
with open(EXAMPLES_FILE, newline="", encoding="utf-8") as _f:
    PREDICT_EXAMPLES = [Example(**row) for row in csv.DictReader(_f)]
REGISTER_NAMES = {
    "social": "Social post",
    "headlines": "Headline",
    "reviews": "Review",
    "financial": "Financial statement",
    "forum": "Forum",
    "newsbody": "News report",
    "crafted": "Crafted hard case",
}


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


def prediction_result(model, pred: dict, text: str, notes: list, ms: float, name: str) -> dict:
    """One prediction as the tab shows it (see predict_text), with a note for unknown characters."""
    note = unknown_note(model, text)
    return {
        "text": text,
        "probs": {t: p["probs"] for t, p in pred.items()},
        "top": {t: (p["label"], p["score"]) for t, p in pred.items()},
        "ms": ms,
        "model": name,
        "notes": notes + ([note] if note else []),
    }


class Job:
    """Sentences waiting for a forward pass through one model, then what came of it (result()). A
    visitor's job gets prediction dicts, a file's chunk (bulk) gets prediction_rows."""

    def __init__(self, ctx: AppContext, model, texts: list[str], bulk: bool = False):
        self.ctx, self.model, self.texts, self.bulk = ctx, model, texts, bulk
        self.ms = 0.0  # how long its forward pass took
        self._done = threading.Event()
        self._out: list | None = None
        self._error: Exception | None = None

    def finish(self, out: list | None = None, error: Exception | None = None, ms: float = 0.0) -> None:
        self._out, self._error, self.ms = out, error, ms
        self._done.set()

    def result(self) -> list:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._out


class ForwardPasses:
    """Every prediction runs its forward pass on one thread, one pass at a time. Visitors' sentences
    that wait while a pass runs go together into the next one (up to PREDICT_BATCH per model), so a
    crowd costs few passes. A file goes a chunk (FILE_CHUNK sentences) at a time, and after a chunk,
    waiting visitors go first: one visitor waits at most one chunk, however long the file.

    Each prediction request is its own Gradio event and its own job here, so whatever is wrong with
    one request fails that request only (Gradio's batch=True preprocesses a batch as a whole: one
    malformed request failed everyone batched with it)."""

    def __init__(self):
        self._cv = threading.Condition()
        self._visitors: deque[Job] = deque()  # a few sentences each, oldest first
        self._bulk: deque[Job] = deque()  # chunks of files, oldest first
        self._bulk_next = False  # a file's chunk goes after each visitors' pass, so files advance too
        self._running: list[Job] = []
        self._thread: threading.Thread | None = None

    def pending(self) -> int:
        """Jobs submitted and not finished yet (waiting, or in the pass that runs)."""
        with self._cv:
            return len(self._visitors) + len(self._bulk) + len(self._running)

    def submit(self, *jobs: Job) -> None:
        with self._cv:
            for job in jobs:
                (self._bulk if job.bulk else self._visitors).append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="mtl-forward-passes", daemon=True)
                self._thread.start()
            self._cv.notify()

    def _next_pass(self) -> list[Job]:
        """The jobs of the next pass: a file's chunk, or the oldest visitor's job with every waiting
        job on the same model (up to PREDICT_BATCH sentences)."""
        with self._cv:
            while not (self._visitors or self._bulk):
                self._cv.wait()
            if self._bulk and (self._bulk_next or not self._visitors):
                self._bulk_next, self._running = False, [self._bulk.popleft()]
                return self._running
            self._bulk_next, group = True, [self._visitors.popleft()]
            n = len(group[0].texts)
            for job in list(self._visitors):
                if job.model is group[0].model and n + len(job.texts) <= PREDICT_BATCH:
                    self._visitors.remove(job)
                    group.append(job)
                    n += len(job.texts)
            self._running = group
            return group

    def _serve(self) -> None:
        while True:
            self._run(self._next_pass())
            with self._cv:
                self._running = []

    def _run(self, group: list[Job]) -> None:
        """One forward pass for `group`; when it fails, each job on its own, so the error is only
        the failing job's."""
        first = group[0]
        texts = [t for job in group for t in job.texts]
        t0 = time.perf_counter()
        try:
            with first.ctx.model_lock(first.model):
                out = prediction_rows(first.model, texts) if first.bulk else first.model.predict(texts)
        except Exception as e:
            if len(group) > 1:
                for job in group:
                    self._run([job])
            else:
                first.finish(error=as_user_error(e))
            return
        ms = (time.perf_counter() - t0) * 1000
        for job in group:
            job.finish(out[: len(job.texts)], ms=ms)
            out = out[len(job.texts) :]


PASSES = ForwardPasses()  # one for the process: the shared models serve one pass at a time anyway


def request_job(ctx: AppContext, text, choice, session) -> tuple[Job, list[str], str]:
    """(the job for one prediction request, notes on its text, the model's display name)."""
    clean, notes = clean_sentence(text, ctx.limits.sentence_chars)
    model, name = ctx.resolve(choice, session)
    return Job(ctx, model, [clean]), notes, name


def predict_text(ctx: AppContext, text, choice, session) -> dict:
    """{"probs": {task: {label: p}}, "top": {task: (label, p)}, "ms", "model", "notes", "text"}."""
    ctx.note_request()
    job, notes, name = request_job(ctx, text, choice, session)
    PASSES.submit(job)
    return prediction_result(job.model, job.result()[0], job.texts[0], notes, job.ms, name)


def predict_many(ctx: AppContext, requests) -> list:
    """predict_text for many (text, choice, session) requests at once: their sentences go to the
    forward passes together (one pass per model serves them all). Returns, in order, a result dict or
    the UIError for each request: whatever goes wrong with one request (a value of the wrong type, an
    unknown model, a bug) is that request's message, never the others'."""
    ctx.note_request()
    items: list = []
    for text, choice, session in requests:
        try:
            items.append(request_job(ctx, text, choice, session))
        except Exception as e:
            items.append(as_user_error(e))
    PASSES.submit(*[item[0] for item in items if not isinstance(item, Exception)])
    out = []
    for item in items:
        if isinstance(item, Exception):
            out.append(item)
            continue
        job, notes, name = item
        try:
            out.append(prediction_result(job.model, job.result()[0], job.texts[0], notes, job.ms, name))
        except Exception as e:
            out.append(as_user_error(e))
    return out


def as_user_error(error: Exception) -> MTLError:
    """An error as the message its request's visitor reads (call it in the `except` block)."""
    return error if isinstance(error, MTLError) else UIError(user_message(error))


def timing_markdown(result: dict, ctx: AppContext) -> str:
    """The top label of each task and how long the forward pass took."""
    top = " · ".join(f"{task}: **{md_escape(lab)}** ({p:.0%})" for task, (lab, p) in result["top"].items())
    return (
        f"{top}  \nTook {result['ms']:.0f} ms for one forward pass through the shared encoder and both heads "
        f"· model: {md_escape(result['model'])} · {ctx.device_name()}"
    )


def prediction_info(ctx: AppContext, result: dict) -> str:
    """The info box under the label bars: top labels, timing, then one line per note."""
    return timing_markdown(result, ctx) + "".join(f"  \n⚠ {md_escape(n)}" for n in result["notes"])


def predict_file(ctx: AppContext, path, choice, session, out_dir=None) -> dict:
    """Predict every sentence of an uploaded file: {"table": DataFrame, "csv": path, "status": md}.

    The CSV has the columns of `python -m mtl predict --output`."""
    ctx.note_request()
    if not path:
        raise UIError("Upload a file first: .csv or .jsonl with a `text` column, or .txt with one sentence per line.")
    if not isinstance(path, (str, os.PathLike)):
        raise UIError("The file must be an uploaded file (its path on the server).")
    path = Path(path)
    if path.suffix.lower() not in BATCH_TYPES:
        raise UIError(
            f"{path.name}: unsupported file type {path.suffix or '(none)'!r}. Upload a .csv or .jsonl with a "
            "`text` column, or a .txt with one sentence per line."
        )
    if not path.is_file():
        raise UIError(f"{path.name} is no longer on the server (an upload is deleted once read): upload it again.")
    limits = ctx.limits
    try:
        texts = load_texts(path, max_rows=limits.batch_rows, max_bytes=limits.upload_bytes)
    except MTLError as e:
        raise UIError(str(e).replace(str(path), path.name)) from None
    texts = [clean_text(t, limits.sentence_chars)[: limits.sentence_chars] for t in texts]
    model, name = ctx.resolve(choice, session)
    t0 = time.perf_counter()
    rows = file_rows(ctx, model, texts)
    seconds = time.perf_counter() - t0
    table = pd.DataFrame(rows)
    out_dir = Path(out_dir) if out_dir else ctx.new_download_dir()
    out = out_dir / f"predictions-{re.sub(r'[^A-Za-z0-9_-]', '_', path.stem)[:60] or 'file'}.csv"
    write_predictions_csv(rows, out)
    counts = {t: table[t].value_counts().idxmax() for t in model.tasks}
    common = " · ".join(f"most common {t}: {md_escape(v)}" for t, v in counts.items())
    status = (
        f"✓ {len(rows):,} sentences from **{md_escape(path.name)}** in {seconds:.1f} s with model "
        f"{md_escape(name)}. {common}. The CSV has a probability column per label."
    )
    return {"table": table, "csv": str(out), "status": status}


def file_rows(ctx: AppContext, model, texts: list[str]) -> list[dict]:
    """prediction_rows for a whole file, FILE_CHUNK sentences per forward pass (see ForwardPasses),
    shortest first so that a pass pads little; in the file's order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    rows: list = [None] * len(texts)
    for start in range(0, len(order), FILE_CHUNK):
        chunk = order[start : start + FILE_CHUNK]
        job = Job(ctx, model, [texts[i] for i in chunk], bulk=True)
        PASSES.submit(job)
        for i, row in zip(chunk, job.result()):
            rows[i] = row
    return rows


def _sentence_column(ctx: AppContext):
    """The sentence box, the Predict button and the examples; returns (text, button, examples)."""
    text = gr.Textbox(
        PREDICT_EXAMPLES[0].text,
        lines=3,
        max_lines=8,
        label="Sentence",
        placeholder="Type a sentence in English…",
        elem_id="predict-text",
    )
    button = gr.Button("Predict", variant="primary")
    examples = gr.Examples(
        [[e.text] for e in PREDICT_EXAMPLES],
        inputs=[text],
        label="Examples in the styles people type: click one (together they cover every topic and sentiment)",
        example_labels=[f"{REGISTER_NAMES[e.register]} · {e.text}" for e in PREDICT_EXAMPLES],
        examples_per_page=len(PREDICT_EXAMPLES),
        api_name="load_example",
    )
    return text, button, examples


def _file_section(ctx: AppContext):
    """Batch: the upload, its button, the status, the CSV and the table; returns them in that order."""
    gr.Markdown("### Batch: a whole file at once")
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            upload = gr.File(
                file_types=list(BATCH_TYPES),
                label=f".csv or .jsonl with a text column, or .txt with one sentence per line "
                f"(up to {ctx.limits.batch_rows:,} sentences, {fmt_bytes(ctx.limits.upload_bytes)})",
                height=140,
            )
            button = gr.Button("Predict the file")
        with gr.Column(scale=3, min_width=360):
            status = gr.Markdown(
                "The table and a CSV to download appear here. The CSV has the columns of "
                "`python -m mtl predict`: the text, then per task the top label and its probability, "
                "then one probability column per label.",
                container=True,
                padding=True,
            )
            csv_file = gr.File(label="Predictions (CSV)", visible=False, height=60)
    table = gr.Dataframe(label="Predictions", interactive=False, max_height=420, wrap=True, visible=False)
    return upload, button, status, csv_file, table


def build_tab(ctx: AppContext, demo: gr.Blocks, picker: gr.Dropdown, session: gr.State) -> None:
    """Lay out the Predict tab and wire it: Predict (batched across visitors), the examples, the page's
    first load, and a file."""
    tasks = list(ctx.tasks)
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            text, button, examples = _sentence_column(ctx)
        with gr.Column(scale=3, min_width=360):
            with gr.Row():
                boxes = [
                    gr.Label(
                        num_top_classes=len(ctx.tasks[t]), label=t.capitalize(), min_width=200, elem_id=f"label-{t}"
                    )
                    for t in tasks
                ]
            info = gr.Markdown(container=True, padding=True, elem_id="predict-info")
    upload, file_button, file_status, csv_file, table = _file_section(ctx)

    @shows_errors(outputs=len(tasks) + 1)
    def predict(text, choice, session):
        r = predict_text(ctx, text, choice, session)
        for note in r["notes"]:
            notify(note)
        return (*[r["probs"].get(t) for t in tasks], prediction_info(ctx, r))

    @shows_errors(outputs=3)
    def predict_upload(path, choice, session):
        try:
            r = predict_file(ctx, path, choice, session)
        finally:
            discard_upload(path)  # read (or refused): it need not take the server's disk any longer
        return gr.update(value=r["table"], visible=True), gr.update(value=r["csv"], visible=True), r["status"]

    inputs, outputs = [text, picker, session], [*boxes, info]
    # every request its own event (so one malformed request fails alone); ForwardPasses batches them
    passes = {"concurrency_limit": PREDICT_CONCURRENCY, "concurrency_id": "predict"}
    button.click(predict, inputs, outputs, api_name="predict", **passes)
    text.submit(predict, inputs, outputs, api_name="predict_submit", **passes)
    examples.load_input_event.then(predict, inputs, outputs, api_name="predict_example", **passes)
    demo.load(predict, inputs, outputs, api_name="predict_on_load", **passes)
    file_outputs = [table, csv_file, file_status]
    file_button.click(predict_upload, [upload, picker, session], file_outputs, api_name="predict_file")
    upload.upload(predict_upload, [upload, picker, session], file_outputs, api_name="predict_upload")
