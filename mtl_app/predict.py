"""The Predict tab: every label of every task for one sentence (one forward pass through the shared
encoder and all heads), examples, and a whole file at once with a CSV to download."""

import re
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from mtl.data import fmt_bytes, load_texts
from mtl.errors import MTLError
from mtl.predictions import prediction_rows, write_predictions_csv

from .context import AppContext, UIError, log_exception, md_escape
from .handlers import shows_errors
from .inputs import clean_sentence, clean_text

PREDICT_BATCH = 16  # predictions that queue up together run as one forward pass (Gradio's batch=True)
PREDICT_CONCURRENCY = 1  # batches at once: one, so waiting requests gather into the next batch
BATCH_TYPES = (".csv", ".jsonl", ".txt")
_ASCII_ALNUM = re.compile("[A-Za-z0-9]")

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


def predict_text(ctx: AppContext, text, choice, session) -> dict:
    """{"probs": {task: {label: p}}, "top": {task: (label, p)}, "ms", "model", "notes", "text"}."""
    ctx.note_request()
    text, notes = clean_sentence(text, ctx.limits.sentence_chars)
    model, name = ctx.resolve(choice, session)
    t0 = time.perf_counter()
    with ctx.model_lock(model):
        pred = model.predict([text])[0]
    return prediction_result(model, pred, text, notes, (time.perf_counter() - t0) * 1000, name)


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
            out[i] = prediction_result(model, pred, clean, notes, ms, name)
    return out


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


def label_outputs(ctx: AppContext, results: list) -> list[list]:
    """predict_many's results as Gradio's batched outputs: one list per output component (a label
    box per task, then the info box), each holding one value per request."""
    tasks = list(ctx.tasks)
    columns = [[] for _ in range(len(tasks) + 1)]
    for r in results:
        if isinstance(r, Exception):
            values = [None] * len(tasks) + [f"⚠ {md_escape(str(r))}"]
        else:
            values = [r["probs"].get(t) for t in tasks] + [prediction_info(ctx, r)]
        for column, value in zip(columns, values):
            column.append(value)
    return columns


def predict_file(ctx: AppContext, path, choice, session, out_dir=None) -> dict:
    """Predict every sentence of an uploaded file: {"table": DataFrame, "csv": path, "status": md}.

    The CSV has the columns of `python -m mtl predict --output`."""
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


def _sentence_column(ctx: AppContext):
    """The sentence box, the Predict button and the examples; returns (text, button, examples)."""
    text = gr.Textbox(
        PREDICT_EXAMPLES[10][0],
        lines=3,
        max_lines=8,
        label="Sentence",
        placeholder="Type a sentence in English…",
        elem_id="predict-text",
    )
    button = gr.Button("Predict", variant="primary")
    examples = gr.Examples(
        [[t] for t, _, _ in PREDICT_EXAMPLES],
        inputs=[text],
        label="Examples: click one (together they cover every topic and sentiment)",
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
            gr.Warning(note)
        return (*[r["probs"].get(t) for t in tasks], prediction_info(ctx, r))

    def predict_batched(texts, choices, request: gr.Request):
        """One forward pass for every request waiting in the queue. The session's model is found by
        its session hash (a batch carries one gr.Request per request)."""
        requests = request if isinstance(request, list) else [request] * len(texts)
        sessions = [ctx.session_for(getattr(r, "session_hash", None)) for r in requests]
        try:
            results = predict_many(ctx, list(zip(texts, choices, sessions)))
        except Exception as e:
            log_exception("predicting")
            results = [UIError(f"Something went wrong ({type(e).__name__}); the app keeps running.")] * len(texts)
        return label_outputs(ctx, results)

    @shows_errors(outputs=3)
    def predict_upload(path, choice, session):
        r = predict_file(ctx, path, choice, session)
        return gr.update(value=r["table"], visible=True), gr.update(value=r["csv"], visible=True), r["status"]

    outputs = [*boxes, info]
    batched = {"batch": True, "max_batch_size": PREDICT_BATCH, "concurrency_limit": PREDICT_CONCURRENCY}
    button.click(predict_batched, [text, picker], outputs, api_name="predict", **batched)
    text.submit(predict_batched, [text, picker], outputs, api_name="predict_submit", **batched)
    examples.load_input_event.then(predict, [text, picker, session], outputs, api_name="predict_example")
    demo.load(predict, [text, picker, session], outputs, api_name="predict_on_load")
    file_outputs = [table, csv_file, file_status]
    file_button.click(predict_upload, [upload, picker, session], file_outputs, api_name="predict_file")
    upload.upload(predict_upload, [upload, picker, session], file_outputs, api_name="predict_upload")
