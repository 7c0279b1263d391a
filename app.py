"""The mtl app: python app.py [--host H] [--port P] [--share] [--public] [--checkpoint DIR]

Layout and wiring only; everything the app computes comes from mtl (mtl/ui*.py)."""

import argparse
import os
import sys
import tempfile
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from mtl import ui, ui_embed, ui_experiments, ui_freeze, ui_text, ui_train  # noqa: E402
from mtl.config import DEVICES  # noqa: E402
from mtl.data import fmt_bytes  # noqa: E402
from mtl.errors import MTLError  # noqa: E402

THEME = gr.themes.Soft(
    primary_hue="indigo",
    secondary_hue="sky",
    neutral_hue="slate",
    font=["Inter", "ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
)
CSS = ui_text.APP_CSS + ui_embed.HEATMAP_CSS
PREDICT_BATCH = 16  # predictions that queue up together run as one forward pass (Gradio's batch=True)
PREDICT_CONCURRENCY = 1  # batches at once: one, so waiting requests gather into the next batch


def blocked_paths() -> list[str]:
    """Gradio serves only its own upload and cache folders (allowed_paths stays empty). The project folder
    is blocked too, so no setting can ever expose the code, the data or the checkpoints; where Gradio's
    folder lies inside the project (GRADIO_TEMP_DIR), its sensitive subfolders are blocked instead."""
    root = ui.ROOT.resolve()
    cache = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()
    if cache == root or root in cache.parents:
        return [str(root / d) for d in ("checkpoints", "data", "mtl", "tests", "bench", ".git")]
    return [str(root)]


class BodyLimit:
    """ASGI middleware: refuses request bodies over `limit` bytes (413) before Gradio parses them, so one
    API call cannot make the server read megabytes of JSON. File uploads have their own cap (max_file_size)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].endswith("/upload"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"text/plain")]})
            return await send({"type": "http.response.body", "body": b"Request body too large"})
        seen = 0

        async def counted():  # a body sent in chunks without a length is cut off at the limit too
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            return {"type": "http.disconnect"} if seen > self.limit else message

        return await self.app(scope, counted, send)


MAX_REQUEST_BYTES = 2_000_000  # the longest text box (200,000 characters) as JSON, with room to spare
LAUNCH_OPTIONS = {
    "theme": THEME,
    "css": CSS,
    "footer_links": ["api"],
    "max_file_size": "5mb",
    "allowed_paths": [],
    "blocked_paths": blocked_paths(),
}


def launch_options() -> dict:
    """demo.launch(**launch_options()): LAUNCH_OPTIONS plus the request-size limit (a fresh dict each
    time: Gradio adds to app_kwargs at every launch)."""
    return {**LAUNCH_OPTIONS, "app_kwargs": {"middleware": [Middleware(BodyLimit, limit=MAX_REQUEST_BYTES)]}}


TASK_COLORS = ["#6366f1", "#f59e0b", "#10b981", "#ef4444", "#0ea5e9", "#a855f7"]
LABEL_COLORS = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d"]


def build_demo(ctx: ui.AppContext, training_slots: int = 1) -> gr.Blocks:
    """The whole app for one AppContext; launch it with demo.launch(**LAUNCH_OPTIONS, ...)."""
    tasks = list(ctx.tasks)
    first_task = tasks[0]
    train_data, _ = ui_train.training_data(ctx)
    default_k = max(0, ui_freeze.num_layers(ctx) - 2)  # bottom:4 on MiniLM: the top 2 layers and the heads train
    default_frozen = ui_freeze.frozen_for_preset(ctx, "bottom", default_k)

    def warn(e) -> str:
        if not isinstance(e, MTLError):  # a bug or a damaged file: a message for the user, the details in the log
            ui.log_exception("handling a request")
            e = f"Something went wrong ({type(e).__name__}); the app keeps running. The details are in its log."
        gr.Warning(str(e))
        return f"⚠ {ui.md_escape(str(e))}"

    def predict_info(r) -> str:
        return ui.timing_markdown(r, ctx) + "".join(f"  \n⚠ {ui.md_escape(n)}" for n in r["notes"])

    def show_model(choice, session):
        try:
            return ctx.model_info(choice, session)
        except Exception as e:
            return warn(e)

    def refresh_models(choice, session):
        choices = ctx.choices(session)
        value = choice if choice in [v for _, v in choices] else ui.DEFAULT_MODEL
        return gr.update(choices=choices, value=value)

    def embed(text, pooling, choice, session):
        try:
            r = ui_embed.embed_sentences(ctx, text, pooling, choice, session)
        except Exception as e:
            return gr.skip(), gr.skip(), gr.skip(), warn(e)
        for note in r["notes"]:
            gr.Warning(note)
        v1, v2 = r["variance"]
        scatter = gr.ScatterPlot(
            value=r["scatter"], x_title=f"PC1 ({v1:.0%} of the variance)", y_title=f"PC2 ({v2:.0%})"
        )
        status = " ".join(f"⚠ {ui.md_escape(n)}" for n in r["notes"])
        return r["heatmap"], r["summary"], scatter, status

    def predict(text, choice, session):
        try:
            r = ui.predict_text(ctx, text, choice, session)
        except Exception as e:
            return (*[gr.skip()] * len(tasks), warn(e))
        for note in r["notes"]:
            gr.Warning(note)
        return (*[r["probs"].get(t) for t in tasks], predict_info(r))

    def predict_many(texts, choices, request: gr.Request):
        """Predict, batched by Gradio: one forward pass for every request waiting in the queue. The
        session's model is found by its session hash (a batch carries one gr.Request per request)."""
        requests = request if isinstance(request, list) else [request] * len(texts)
        sessions = [ctx.session_for(getattr(r, "session_hash", None)) for r in requests]
        try:
            results = ui.predict_many(ctx, list(zip(texts, choices, sessions)))
        except Exception as e:
            ui.log_exception("predicting")
            results = [ui.UIError(f"Something went wrong ({type(e).__name__}); the app keeps running.")] * len(texts)
        columns = [[] for _ in range(len(tasks) + 1)]
        for r in results:
            if isinstance(r, Exception):
                values = [None] * len(tasks) + [f"⚠ {ui.md_escape(str(r))}"]
            else:
                values = [r["probs"].get(t) for t in tasks] + [predict_info(r)]
            for column, value in zip(columns, values):
                column.append(value)
        return columns

    def predict_batch(path, choice, session):
        try:
            r = ui.predict_file(ctx, path, choice, session)
        except Exception as e:
            return gr.skip(), gr.skip(), warn(e)
        return gr.update(value=r["table"], visible=True), gr.update(value=r["csv"], visible=True), r["status"]

    def preset_input(preset, k, frozen, start):
        try:
            frozen, show_k, summary = ui_freeze.preset_changed(ctx, preset, k, frozen, start)
        except MTLError as e:
            return gr.skip(), gr.skip(), warn(e)
        return frozen, gr.update(visible=show_k), summary

    def frozen_input(frozen, start):
        try:
            preset, k, show_k, summary = ui_freeze.frozen_changed(ctx, frozen, start)
        except MTLError as e:
            return gr.skip(), gr.skip(), warn(e)
        k_update = gr.update(visible=show_k) if k is None else gr.update(visible=show_k, value=k)
        return preset, k_update, summary

    def prepare(session, request: gr.Request):
        ctx.register(getattr(request, "session_hash", None), session)
        try:
            return ui_train.prepare_run(session)
        except MTLError as e:
            raise gr.Error(str(e)) from None  # and the run itself is not queued (.success below)

    def train(
        session, choice, start, frozen, epochs, batch_size, lr_encoder, lr_heads, mixing, sentences, request: gr.Request
    ):
        ctx.register(getattr(request, "session_hash", None), session)  # so batched predictions find its model
        args = (choice, start, frozen, epochs, batch_size, lr_encoder, lr_heads, mixing, sentences)
        try:
            for u in ui_train.run_training(ctx, session, *args):
                adopted = u["adopted"]
                picker_update = (
                    gr.update(choices=ctx.choices(session), value=ui.SESSION_MODEL) if adopted else gr.skip()
                )
                info = ctx.model_info(ui.SESSION_MODEL, session) if adopted else gr.skip()
                yield u["progress"], u["plot"], u["val"], u["status"], picker_update, info
        except MTLError as e:
            session.pending = False
            yield gr.skip(), gr.skip(), gr.skip(), warn(e), gr.skip(), gr.skip()

    def live_sweep(sweep_name, sentences, epochs, session):
        session.sweep_stop = threading.Event()
        try:
            yield from ui_experiments.run_live_sweep(ctx, sweep_name, sentences, epochs, session.sweep_stop)
        except MTLError as e:
            yield warn(e), gr.skip()

    def live_logme(choice, session, sentences):
        try:
            return ui_experiments.live_logme(ctx, choice, session, sentences)
        except MTLError as e:
            return warn(e), gr.skip()

    def stop_sweep(session):
        event = getattr(session, "sweep_stop", None)
        if event is None:
            return "No sweep is running."
        event.set()
        return "Stopping after the current run."

    def stop(session):
        if not (session.running or session.pending):
            gr.Info("No training run to stop.")
            return gr.skip()
        return ui_train.stop_training(session)

    def save(name, choice, session):
        try:
            saved = ui_train.save_session_model(ctx, session, name)
        except Exception as e:
            return warn(e), gr.skip()
        where = os.path.relpath(ctx.saved_dir / saved, ui.ROOT)
        status = (
            f"✓ Saved as **{saved}**. It is listed in the model picker (for everyone using this app) and "
            f"loads with `python -m mtl predict --checkpoint {where}`."
        )
        return status, gr.update(choices=ctx.choices(session), value=choice)

    with gr.Blocks(title="mtl · multi-task sentence transformer", delete_cache=(3600, 3600)) as demo:
        session = gr.State(ui.Session())
        gr.HTML(
            '<div class="mtl-hero"><h1>mtl <span>· multi-task sentence transformer</span></h1>'
            f"<p>One MiniLM sentence encoder shared by {' and '.join(f'a <b>{t}</b> head' for t in tasks)}. "
            "Compare sentence embeddings, predict every label in one pass, and fine-tune it yourself with any "
            f"part frozen, right here on the {ui.device_name(ctx)}.</p></div>"
        )
        with gr.Row(elem_id="model-bar", equal_height=True):
            picker = gr.Dropdown(
                ctx.choices(None),
                value=ui.DEFAULT_MODEL,
                label="Active model",
                info="used by Embeddings and Predict; your trained model appears here",
                allow_custom_value=True,  # API callers may name any saved model; ui.resolve checks the name
                scale=2,
                min_width=280,
                elem_id="model-picker",
            )
            model_info = gr.Markdown(
                ctx.model_info(ui.DEFAULT_MODEL, None), container=True, padding=True, elem_id="model-info", scale=3
            )
            refresh = gr.Button("↻ Refresh list", elem_id="refresh-models", scale=0, size="sm", min_width=120)

        with gr.Tabs():
            with gr.Tab("Embeddings", id="embeddings"):
                gr.Markdown(
                    "Each sentence becomes one vector from the shared encoder. Similar meaning, similar vector: "
                    "the heatmap shows the **cosine similarity** of every pair (1 = same direction), the plot "
                    "flattens the vectors to two dimensions.",
                    elem_classes="mtl-note",
                )
                with gr.Row():
                    with gr.Column(scale=2, min_width=320):
                        emb_text = gr.Textbox(
                            ui.EMBED_EXAMPLE,
                            lines=9,
                            max_lines=16,
                            label=f"Sentences, one per line (up to {ctx.limits.embed_sentences})",
                        )
                        pooling = gr.Radio(
                            [("mean", "mean"), ("CLS", "cls"), ("max", "max")],
                            value="mean",
                            label="Pooling: how token vectors become one sentence vector",
                            info="mean averages the tokens (what the heads were trained on); CLS takes the first "
                            "token's vector; max keeps each dimension's largest value",
                        )
                        emb_btn = gr.Button("Compare sentences", variant="primary")
                        emb_status = gr.Markdown()
                    with gr.Column(scale=3, min_width=360):
                        heatmap = gr.HTML(label="Cosine similarity", min_height=200, elem_id="heatmap")
                with gr.Row():
                    with gr.Column(scale=2, min_width=320):
                        emb_summary = gr.Markdown(container=True, padding=True)
                    with gr.Column(scale=3, min_width=360):
                        scatter = gr.ScatterPlot(
                            x="PC1",
                            y="PC2",
                            color=f"predicted {first_task}",
                            tooltip=["sentence", f"predicted {first_task}"],
                            color_map={
                                lab: LABEL_COLORS[i % len(LABEL_COLORS)] for i, lab in enumerate(ctx.tasks[first_task])
                            },
                            title=f"2-D projection (PCA), coloured by predicted {first_task}",
                            height=340,
                            label="PCA",
                            show_label=False,
                        )

            with gr.Tab("Predict", id="predict"):
                with gr.Row():
                    with gr.Column(scale=2, min_width=320):
                        pred_text = gr.Textbox(
                            ui.PREDICT_EXAMPLES[10][0],
                            lines=3,
                            max_lines=8,
                            label="Sentence",
                            placeholder="Type a sentence in English…",
                            elem_id="predict-text",
                        )
                        pred_btn = gr.Button("Predict", variant="primary")
                        examples = gr.Examples(
                            [[t] for t, _, _ in ui.PREDICT_EXAMPLES],
                            inputs=[pred_text],
                            label="Examples: click one (together they cover every topic and sentiment)",
                            examples_per_page=len(ui.PREDICT_EXAMPLES),
                            api_name="load_example",
                        )
                    with gr.Column(scale=3, min_width=360):
                        with gr.Row():
                            label_boxes = [
                                gr.Label(
                                    num_top_classes=len(ctx.tasks[t]),
                                    label=t.capitalize(),
                                    min_width=200,
                                    elem_id=f"label-{t}",
                                )
                                for t in tasks
                            ]
                        pred_info = gr.Markdown(container=True, padding=True, elem_id="predict-info")
                gr.Markdown("### Batch: a whole file at once")
                with gr.Row():
                    with gr.Column(scale=2, min_width=320):
                        file_in = gr.File(
                            file_types=list(ui.BATCH_TYPES),
                            label=f".csv or .jsonl with a text column, or .txt with one sentence per line "
                            f"(up to {ctx.limits.batch_rows:,} sentences, {fmt_bytes(ctx.limits.upload_bytes)})",
                            height=140,
                        )
                        batch_btn = gr.Button("Predict the file")
                    with gr.Column(scale=3, min_width=360):
                        batch_status = gr.Markdown(
                            "The table and a CSV to download appear here. The CSV has the columns of "
                            "`python -m mtl predict`: the text, then per task the top label and its probability, "
                            "then one probability column per label.",
                            container=True,
                            padding=True,
                        )
                        file_out = gr.File(label="Predictions (CSV)", visible=False, height=60)
                batch_table = gr.Dataframe(
                    label="Predictions", interactive=False, max_height=420, wrap=True, visible=False
                )

            with gr.Tab("Train", id="train"):
                gr.Markdown(
                    f"Fine-tune on the shipped data ({len(train_data):,} sentences; accuracy checked after every "
                    "epoch on the validation set). The result becomes **your** active model, in this browser "
                    "session only: other visitors and the shipped model are never affected.",
                    elem_classes="mtl-note",
                )
                with gr.Row():
                    with gr.Column(scale=2, min_width=340):
                        start = gr.Radio(
                            ui_train.START_POINTS,
                            value="pretrained",
                            label="Start from",
                            info="new heads on the pretrained encoder show what a freeze setting can learn from "
                            "scratch; the active model continues from what it already knows",
                        )
                        preset = gr.Dropdown(ui_freeze.preset_choices(ctx), value="bottom", label="Freeze preset")
                        k_slider = gr.Slider(
                            0,
                            ui_freeze.num_layers(ctx),
                            value=default_k,
                            step=1,
                            label="K: layers frozen from the bottom",
                            visible=True,
                        )
                        frozen = gr.CheckboxGroup(
                            ui_freeze.component_choices(ctx),
                            value=default_frozen,
                            label="Frozen components (ticked = frozen)",
                            info="network order, bottom to top; the preset follows your ticks",
                            elem_id="frozen-components",
                        )
                        trainable = gr.Markdown(ui_freeze.trainable_summary(ctx, default_frozen), container=True)
                        with gr.Row():
                            epochs = gr.Slider(
                                1,
                                ctx.limits.max_epochs_heads_only,
                                value=2,
                                step=1,
                                label="Epochs",
                                info=f"up to {ctx.limits.max_epochs} when any encoder layer trains",
                                elem_id="train-epochs",
                            )
                            sentences = gr.Slider(
                                ui_train.MIN_SENTENCES,
                                ui_train.max_sentences(ctx),
                                value=ui_train.max_sentences(ctx),
                                step=32,
                                label="Training sentences",
                                elem_id="train-sentences",
                            )
                        batch_size = gr.Radio(
                            list(ui_train.BATCH_SIZES), value=32, label="Batch size", elem_id="batch-size"
                        )
                        with gr.Row():
                            lr_encoder = gr.Dropdown(
                                [(f"{v:g}", v) for v in ui_train.LR_ENCODER], value=5e-5, label="Encoder learning rate"
                            )
                            lr_heads = gr.Dropdown(
                                [(f"{v:g}", v) for v in ui_train.LR_HEADS], value=5e-3, label="Head learning rate"
                            )
                        mixing = gr.Dropdown(ui_train.SAMPLING, value="joint", label="Task mixing")
                    with gr.Column(scale=3, min_width=380):
                        with gr.Row():
                            start_btn = gr.Button("▶ Start training", variant="primary", scale=3)
                            stop_btn = gr.Button("■ Stop", variant="stop", scale=1)
                        progress = gr.HTML(ui_train.IDLE_PROGRESS, elem_id="train-progress")
                        train_status = gr.Markdown(elem_id="train-status")
                        empty_view = ui_train.RunView(tasks, 0, 0)
                        loss_plot = gr.LinePlot(
                            None,  # not an empty table: see RunView.plot_frame
                            x="step",
                            y="loss",
                            color="task",
                            color_map={t: TASK_COLORS[i % len(TASK_COLORS)] for i, t in enumerate(tasks)},
                            title="Training loss per task (grows while it trains)",
                            x_title="step",
                            y_title="cross-entropy loss",
                            y_lim=[0, None],
                            height=300,
                            show_label=False,
                            elem_id="loss-plot",
                        )
                        val_table = gr.Dataframe(
                            empty_view.val_frame(),
                            label="Validation after each epoch",
                            interactive=False,
                            elem_id="val-table",
                        )
                        with gr.Row(equal_height=True):
                            save_name = gr.Textbox(
                                label="Save this session's model as",
                                placeholder="e.g. heads-only-3ep (letters, digits, - and _)",
                                scale=3,
                            )
                            save_btn = gr.Button("Save model", scale=1, min_width=120)
                        save_status = gr.Markdown()

            with gr.Tab("Experiments", id="experiments"):
                results = ui_experiments.load_results()
                gr.Markdown(ui_text.EXPERIMENTS_NOTE)
                gr.Markdown(ui_experiments.provenance(results), elem_classes="muted")
                with gr.Tabs():
                    for sweep_name, title in ui_experiments.SWEEP_TITLES.items():
                        with gr.Tab(title):
                            gr.Markdown(ui_text.SWEEP_NOTES[sweep_name])
                            if sweep_name == "layers":
                                gr.LinePlot(
                                    ui_experiments.layer_curve(results),
                                    x="layers frozen (K)",
                                    y="macro-F1",
                                    color="task",
                                    title="Test macro-F1 against layers frozen (-1: none)",
                                    height=280,
                                )
                            cost = ui_experiments.costs(results, sweep_name)
                            order = list(cost["setting"]) or None  # the sweep's own order, not alphabetical
                            with gr.Row():
                                bar_data = ui_experiments.bars(results, sweep_name)
                                for task in tasks:
                                    gr.BarPlot(
                                        bar_data[bar_data["task"] == task],
                                        x="setting",
                                        y="accuracy",
                                        title=f"{task}: test accuracy",
                                        y_lim=[0, 1],
                                        x_label_angle=-20,
                                        sort=order,
                                        height=260,
                                    )
                            with gr.Row():
                                for y, title in (
                                    ("trainable params (millions)", "Trainable parameters"),
                                    ("train time (s)", "Training time"),
                                ):
                                    gr.BarPlot(
                                        cost, x="setting", y=y, title=title, x_label_angle=-20, sort=order, height=240
                                    )
                            gr.Dataframe(ui_experiments.results_table(results, sweep_name), wrap=True)
                    with gr.Tab("LogME (no training)"):
                        gr.Markdown(ui_text.SWEEP_NOTES["logme"])
                        gr.Dataframe(ui_experiments.logme_table(), wrap=True)
                        gr.Markdown(ui_experiments.logme_agreement_markdown())
                        gr.Markdown(
                            "**Score a model yourself.** LogME of every layer of the model chosen at the top "
                            "(train one in the Train tab and compare it with the shipped one), in seconds."
                        )
                        with gr.Row():
                            logme_sentences = gr.Slider(
                                64, ui_experiments.LIVE_MAX_SENTENCES, value=256, step=64, label="Training sentences"
                            )
                            logme_btn = gr.Button("Score the layers with LogME")
                        logme_status = gr.Markdown()
                        logme_out = gr.Dataframe(wrap=True)
                gr.Markdown("### Run a small sweep yourself")
                with gr.Row():
                    live_sweep_name = gr.Dropdown(list(ui_experiments.SWEEP_TITLES), value="freeze", label="Sweep")
                    live_sentences = gr.Slider(
                        64, ui_experiments.LIVE_MAX_SENTENCES, value=128, step=64, label="Training sentences"
                    )
                    live_epochs = gr.Slider(1, ui_experiments.LIVE_MAX_EPOCHS, value=1, step=1, label="Epochs")
                with gr.Row():
                    live_btn = gr.Button("Run the sweep", variant="primary")
                    live_stop_btn = gr.Button("Stop")
                live_status = gr.Markdown()
                live_table = gr.Dataframe(ui_experiments.empty_live_table(tasks), wrap=True)

            with gr.Tab("About", id="about"):
                gr.Markdown(ui_text.about_markdown(ctx))

        # wiring: every event has an api_name, so gradio_client can drive the app
        picker.change(show_model, [picker, session], model_info, api_name="model_info")
        refresh.click(refresh_models, [picker, session], picker, api_name="refresh_models")

        emb_outputs = [heatmap, emb_summary, scatter, emb_status]
        emb_btn.click(embed, [emb_text, pooling, picker, session], emb_outputs, api_name="embed")
        pooling.input(embed, [emb_text, pooling, picker, session], emb_outputs, api_name="embed_pooling")
        demo.load(embed, [emb_text, pooling, picker, session], emb_outputs, api_name="embed_on_load")

        # one limit for everything that trains (runs, live sweeps, live LogME): they share the "train" slots
        train_slots = min(training_slots, ctx.limits.training_slots or training_slots)
        pred_outputs = [*label_boxes, pred_info]
        batched = {"batch": True, "max_batch_size": PREDICT_BATCH, "concurrency_limit": PREDICT_CONCURRENCY}
        pred_btn.click(predict_many, [pred_text, picker], pred_outputs, api_name="predict", **batched)
        pred_text.submit(predict_many, [pred_text, picker], pred_outputs, api_name="predict_submit", **batched)
        examples.load_input_event.then(predict, [pred_text, picker, session], pred_outputs, api_name="predict_example")
        demo.load(predict, [pred_text, picker, session], pred_outputs, api_name="predict_on_load")
        batch_outputs = [batch_table, file_out, batch_status]
        batch_btn.click(predict_batch, [file_in, picker, session], batch_outputs, api_name="predict_file")
        file_in.upload(predict_batch, [file_in, picker, session], batch_outputs, api_name="predict_upload")

        preset.input(
            preset_input, [preset, k_slider, frozen, start], [frozen, k_slider, trainable], api_name="freeze_preset"
        )
        k_slider.input(
            preset_input, [preset, k_slider, frozen, start], [frozen, k_slider, trainable], api_name="freeze_k"
        )
        frozen.input(frozen_input, [frozen, start], [preset, k_slider, trainable], api_name="freeze_components")
        start.input(frozen_input, [frozen, start], [preset, k_slider, trainable], api_name="start_point")

        train_inputs = [session, picker, start, frozen, epochs, batch_size, lr_encoder, lr_heads, mixing, sentences]
        start_btn.click(prepare, session, train_status, api_name="train_prepare", concurrency_limit=None).success(
            train,
            train_inputs,
            [progress, loss_plot, val_table, train_status, picker, model_info],
            api_name="train",
            concurrency_limit=train_slots,
            concurrency_id="train",
            show_progress_on=[progress],
        )
        stop_btn.click(stop, session, train_status, api_name="stop", concurrency_limit=None)
        live_btn.click(
            live_sweep,
            [live_sweep_name, live_sentences, live_epochs, session],
            [live_status, live_table],
            api_name="sweep",
            concurrency_limit=train_slots,
            concurrency_id="train",
        )
        logme_btn.click(
            live_logme,
            [picker, session, logme_sentences],
            [logme_status, logme_out],
            api_name="logme",
            concurrency_limit=train_slots,
            concurrency_id="train",
        )
        live_stop_btn.click(stop_sweep, session, live_status, api_name="stop_sweep", concurrency_limit=None)
        save_btn.click(save, [save_name, picker, session], [save_status, picker], api_name="save_model")

    demo.queue(default_concurrency_limit=2, max_size=ctx.limits.queue_size)
    return demo


def is_public(args) -> bool:
    """Public-link limits (mtl.ui.PUBLIC_LIMITS): asked for, implied by a share link, or on a Space."""
    return bool(args.public or args.share or os.environ.get("SPACE_ID"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Open the mtl app in a browser (Gradio).")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), help="0.0.0.0 for all")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    p.add_argument("--share", action="store_true", help="also open a temporary public link (needs internet)")
    p.add_argument("--checkpoint", default=str(ui.DEFAULT_CHECKPOINT), help="the model the app opens on")
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto: a GPU when there is one")
    p.add_argument("--training-slots", type=int, default=1, help="training runs at once; the rest wait in a queue")
    p.add_argument(
        "--public",
        action="store_true",
        help="the stricter limits of a public demo (see README); implied by --share and on a Hugging Face Space",
    )
    args = p.parse_args(argv)
    public = is_public(args)
    try:
        ctx = ui.AppContext(args.checkpoint, device=args.device, public=public)
        demo = build_demo(ctx, training_slots=max(1, args.training_slots))
    except MTLError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    limits = "public-link limits" if public else "local limits"
    print(f"mtl app: model {args.checkpoint} on the {ui.device_name(ctx)}, {limits}", file=sys.stderr)
    try:
        demo.launch(
            server_name=args.host, server_port=args.port, share=args.share, prevent_thread_lock=True, **launch_options()
        )
    except OSError as e:
        print(f"error: cannot serve on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 2
    if args.share and not demo.share_url:
        print(
            "note: the public share link could not be created (no internet, or the share service is down); "
            f"the app keeps serving locally at {demo.local_url}",
            file=sys.stderr,
        )
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
