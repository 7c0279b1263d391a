"""The Train tab: the form (start point, what to freeze, options), Start and Stop, a loss plot that grows
while the model trains, validation per epoch, and saving the result under a name. The run itself is
in train_run.py, saving in train_save.py, the freezing controls in freeze_controls.py."""

from types import SimpleNamespace

import gradio as gr

from .admission import reserving
from .context import DEFAULT_MODEL, SESSION_MODEL, AppContext, md_escape
from .freeze_controls import build_controls
from .handlers import shows_errors
from .train_run import (
    BATCH_SIZES,
    DEFAULT_SENTENCES,
    IDLE_PROGRESS,
    LR_ENCODER,
    LR_HEADS,
    MIN_SENTENCES,
    SAMPLING,
    START_POINTS,
    RunView,
    max_sentences,
    run_training,
    stop_training,
)
from .train_save import delete_saved_model, save_session_model, saved_message

TASK_COLORS = ["#6366f1", "#f59e0b", "#10b981", "#ef4444", "#0ea5e9", "#a855f7"]


def _form(ctx: AppContext) -> list:
    """The left column; returns the run's inputs after the model picker: start point, frozen
    components, epochs, batch size, both learning rates, task mixing, sentences."""
    start = gr.Radio(
        START_POINTS,
        value="pretrained",
        label="Start from",
        info="new heads on the pretrained encoder show what a freeze setting can learn from "
        "scratch; the active model continues from what it already knows",
    )
    frozen = build_controls(ctx, start)
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
        most = max_sentences(ctx)
        sentences = gr.Slider(
            MIN_SENTENCES,
            most,
            value=min(most, DEFAULT_SENTENCES),
            step=32,
            label="Training sentences",
            info=f"drawn at random from the {len(ctx.training_data()[0]):,} training sentences",
            elem_id="train-sentences",
        )
    batch_size = gr.Radio(list(BATCH_SIZES), value=32, label="Batch size", elem_id="batch-size")
    with gr.Row():
        lr_encoder = gr.Dropdown([(f"{v:g}", v) for v in LR_ENCODER], value=5e-5, label="Encoder learning rate")
        lr_heads = gr.Dropdown([(f"{v:g}", v) for v in LR_HEADS], value=5e-3, label="Head learning rate")
    mixing = gr.Dropdown(SAMPLING, value="joint", label="Task mixing")
    return [start, frozen, epochs, batch_size, lr_encoder, lr_heads, mixing, sentences]


def _run_panel(ctx: AppContext) -> SimpleNamespace:
    """The right column: Start, Stop, progress, status, loss plot, validation table and saving."""
    tasks = list(ctx.tasks)
    with gr.Row():
        start = gr.Button("▶ Start training", variant="primary", scale=3)
        stop = gr.Button("■ Stop", variant="stop", scale=1)
    progress = gr.HTML(IDLE_PROGRESS, elem_id="train-progress")
    status = gr.Markdown(elem_id="train-status")
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
        RunView(tasks, 0, 0).val_frame(), label="Validation after each epoch", interactive=False, elem_id="val-table"
    )
    with gr.Row(equal_height=True):
        save_name = gr.Textbox(
            label="Save this session's model as",
            placeholder="e.g. heads-only-3ep (letters, digits, - and _)",
            scale=3,
        )
        save = gr.Button("Save model", scale=1, min_width=120)
    with gr.Row(equal_height=True):
        own = gr.Dropdown(
            [],
            label="Models this session saved",
            info=f"up to {ctx.limits.session_saved_models} per session; only you can delete yours",
            allow_custom_value=True,  # the handler checks the name against the session's own list
            scale=3,
        )
        delete = gr.Button("Delete model", scale=1, min_width=120)
    save_status = gr.Markdown()
    return SimpleNamespace(
        start=start,
        stop=stop,
        progress=progress,
        status=status,
        loss_plot=loss_plot,
        val_table=val_table,
        save_name=save_name,
        save=save,
        own=own,
        delete=delete,
        save_status=save_status,
    )


def build_tab(
    ctx: AppContext, picker: gr.Dropdown, model_info: gr.Markdown, session: gr.State, training_slots: int
) -> None:
    """Lay out the Train tab and wire it. A run takes one of the `training_slots` (shared with the
    Experiments tab's live sweep and LogME); when it ends, the picker switches to the trained model.

    Runs are admitted by the context, not by Gradio's queue: the event's validator takes the run's place
    (ctx.reserve_training) before Gradio queues it, or refuses it with a message (so training
    submissions never fill the queue predictions use); the event then runs at once
    (concurrency_limit=None) and waits for its slot inside the handler, showing its place."""
    ctx.use_training_slots(training_slots)
    train_data, val = ctx.training_data()
    registers = len(train_data.group_indices())
    styles = f" in {registers} registers" if registers > 1 else ""
    gr.Markdown(
        f"Fine-tune on the shipped model's training data ({len(train_data):,} sentences{styles}; accuracy "
        f"checked after every epoch on {len(val):,} validation sentences). The result becomes **your** active "
        "model, in this browser session only: other visitors and the shipped model are never affected.",
        elem_classes="mtl-note",
    )
    with gr.Row():
        with gr.Column(scale=2, min_width=340):
            form = _form(ctx)
        with gr.Column(scale=3, min_width=380):
            panel = _run_panel(ctx)

    @shows_errors(outputs=6, message=3)
    def train(
        session, choice, start, frozen, epochs, batch_size, lr_encoder, lr_heads, mixing, sentences, request: gr.Request
    ):
        ctx.register(getattr(request, "session_hash", None), session)  # so batched predictions find its model
        options = (start, frozen, epochs, batch_size, lr_encoder, lr_heads, mixing, sentences)
        for u in run_training(ctx, session, choice, *options, request=request):
            picker_update = gr.update(choices=ctx.choices(session), value=SESSION_MODEL) if u["adopted"] else gr.skip()
            info = ctx.model_info(SESSION_MODEL, session) if u["adopted"] else gr.skip()
            yield u["progress"], u["plot"], u["val"], u["status"], picker_update, info

    def stop(session):
        if not (session.running or session.pending):
            gr.Info("No training run to stop.")
            return gr.skip()
        return stop_training(session)

    panel.start.click(
        train,
        [session, picker, *form],
        [panel.progress, panel.loss_plot, panel.val_table, panel.status, picker, model_info],
        api_name="train",
        validator=reserving(ctx, "training run", session_at=0, message_at=2),  # admission before the queue
        concurrency_limit=None,  # and no wait in Gradio's queue: a run waits for its slot in the handler
        show_progress_on=[panel.progress],
    )
    panel.stop.click(stop, session, panel.status, api_name="stop", concurrency_limit=None)
    _wire_saving(ctx, panel, picker, session)


def _wire_saving(ctx: AppContext, panel: SimpleNamespace, picker: gr.Dropdown, session: gr.State) -> None:
    """Save the session's model under a name, and delete one of the models this session saved."""

    @shows_errors(outputs=3, message=0)
    def save(name, choice, session):
        saved = save_session_model(ctx, session, name)
        own = gr.update(choices=list(session.saved), value=saved)
        return saved_message(ctx, saved), gr.update(choices=ctx.choices(session), value=choice), own

    @shows_errors(outputs=3, message=0)
    def delete(name, choice, session):
        deleted = delete_saved_model(ctx, session, name)
        picked = DEFAULT_MODEL if choice == deleted else choice
        own = gr.update(choices=list(session.saved), value=session.saved[-1] if session.saved else None)
        return f"Deleted {md_escape(deleted)}.", gr.update(choices=ctx.choices(session), value=picked), own

    outputs = [panel.save_status, picker, panel.own]
    panel.save.click(save, [panel.save_name, picker, session], outputs, api_name="save_model")
    panel.delete.click(delete, [panel.own, picker, session], outputs, api_name="delete_model")
