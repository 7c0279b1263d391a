"""The mtl app: python app.py [--host H] [--port P] [--share] [--public] [--checkpoint DIR] [--device D]

The entry point a Hugging Face Space runs: the header, the model bar, the tabs and launch. Each tab
lays out and wires itself in its own module of mtl_app/; the shared state is mtl_app/context.py, the
launch options mtl_app/server.py."""

import argparse
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gradio as gr  # noqa: E402

from mtl.config import DEVICES  # noqa: E402
from mtl.errors import MTLError  # noqa: E402
from mtl_app import about, embeddings, experiments, predict, train  # noqa: E402
from mtl_app.context import DEFAULT_CHECKPOINT, DEFAULT_MODEL, AppContext, Session  # noqa: E402
from mtl_app.handlers import shows_errors  # noqa: E402
from mtl_app.server import launch_options  # noqa: E402


def header(ctx: AppContext) -> None:
    heads = " and ".join(f"a <b>{t}</b> head" for t in ctx.tasks)
    gr.HTML(
        '<div class="mtl-hero"><h1>mtl <span>· multi-task sentence transformer</span></h1>'
        f"<p>One MiniLM sentence encoder shared by {heads}. "
        "Compare sentence embeddings, predict every label in one pass, and fine-tune it yourself with any "
        f"part frozen, right here on the {ctx.device_name()}.</p></div>"
    )


def model_bar(ctx: AppContext, session: gr.State) -> tuple[gr.Dropdown, gr.Markdown]:
    """The model picker every tab reads, what the picked model is, and ↻ to list newly saved models."""
    with gr.Row(elem_id="model-bar", equal_height=True):
        picker = gr.Dropdown(
            ctx.choices(None),
            value=DEFAULT_MODEL,
            label="Active model",
            info="used by Embeddings and Predict; your trained model appears here",
            allow_custom_value=True,  # API callers may name any saved model; AppContext.resolve checks the name
            scale=2,
            min_width=280,
            elem_id="model-picker",
        )
        info = gr.Markdown(
            ctx.model_info(DEFAULT_MODEL, None), container=True, padding=True, elem_id="model-info", scale=3
        )
        refresh = gr.Button("↻ Refresh list", elem_id="refresh-models", scale=0, size="sm", min_width=120)

    @shows_errors()
    def show_model(choice, session):
        return ctx.model_info(choice, session)

    def refresh_models(choice, session):
        choices = ctx.choices(session)
        value = choice if choice in [v for _, v in choices] else DEFAULT_MODEL
        return gr.update(choices=choices, value=value)

    picker.change(show_model, [picker, session], info, api_name="model_info")
    refresh.click(refresh_models, [picker, session], picker, api_name="refresh_models")
    return picker, info


def build_demo(ctx: AppContext, training_slots: int = 1) -> gr.Blocks:
    """The whole app for one AppContext; launch it with demo.launch(**launch_options(ctx.limits), ...)."""
    # one limit for everything that trains (runs, live sweeps, live LogME): they share the "train" slots
    training_slots = min(training_slots, ctx.limits.training_slots or training_slots)
    with gr.Blocks(title="mtl · multi-task sentence transformer", delete_cache=(3600, 3600)) as demo:
        session = gr.State(Session())
        header(ctx)
        picker, model_info = model_bar(ctx, session)
        with gr.Tabs():
            with gr.Tab("Embeddings", id="embeddings"):
                embeddings.build_tab(ctx, demo, picker, session)
            with gr.Tab("Predict", id="predict"):
                predict.build_tab(ctx, demo, picker, session)
            with gr.Tab("Train", id="train"):
                train.build_tab(ctx, picker, model_info, session, training_slots)
            with gr.Tab("Experiments", id="experiments"):
                experiments.build_tab(ctx, picker, session, training_slots)
            with gr.Tab("About", id="about"):
                about.build_tab(ctx)
    demo.queue(default_concurrency_limit=2, max_size=ctx.limits.queue_size)
    return demo


def is_public(args) -> bool:
    """Public-link limits (mtl_app.context.PUBLIC_LIMITS): asked for, implied by a share link, or on a Space."""
    return bool(args.public or args.share or os.environ.get("SPACE_ID"))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Open the mtl app in a browser (Gradio).")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), help="0.0.0.0 for all")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    p.add_argument("--share", action="store_true", help="also open a temporary public link (needs internet)")
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="the model the app opens on")
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto: a GPU when there is one")
    p.add_argument("--training-slots", type=int, default=1, help="training runs at once; the rest wait in a queue")
    p.add_argument(
        "--public",
        action="store_true",
        help="the stricter limits of a public demo (see README); implied by --share and on a Hugging Face Space",
    )
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    public = is_public(args)
    try:
        ctx = AppContext(args.checkpoint, device=args.device, public=public)
        demo = build_demo(ctx, training_slots=max(1, args.training_slots))
    except MTLError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    limits = "public-link limits" if public else "local limits"
    print(f"mtl app: model {args.checkpoint} on the {ctx.device_name()}, {limits}", file=sys.stderr)
    try:
        demo.launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            prevent_thread_lock=True,
            **launch_options(ctx.limits),
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
