"""The About tab: what the model is, how the heads share the encoder, when to freeze what, and what
the experiments measured (read from the committed results, never typed in)."""

import gradio as gr

from .context import AppContext, accuracy_line
from .results_view import load_results, measured_markdown
from .train_run import format_seconds, time_limit

FREEZE_SCENARIOS = [
    (
        "`none`",
        "nothing",
        "Everything adapts. Usually the most accurate and the slowest; use it when you have enough data and time.",
    ),
    (
        "`all`",
        "everything",
        "Nothing can learn, so the app runs no training loop: it only measures the starting model. A baseline.",
    ),
    (
        "`backbone`",
        "embeddings + all layers",
        "Only the heads learn: fast, a checkpoint of kilobytes, and the sentence embeddings stay unchanged "
        "(handy when they also feed a search index). Good with little data.",
    ),
    (
        "one head, e.g. `head.sentiment`",
        "that head",
        "Keeps a task's decision rule fixed while the encoder adapts. Measured: the task still learns, because "
        "its loss trains the encoder under the frozen head, but both tasks end below training everything.",
    ),
    (
        "`bottom:K`",
        "embeddings + the bottom K layers",
        "The middle ground: lower layers hold general language knowledge, upper layers specialise. Faster than "
        "full fine-tuning and less prone to overfitting small data.",
    ),
]


def heads_diagram(ctx: AppContext) -> str:
    """The branches of the architecture sketch: one arrow from the sentence vector to each head."""
    width = max(len(t) for t in ctx.tasks) + 5
    return "\n".join(
        " " * 69
        + ("└" if i == len(ctx.tasks) - 1 else "├")
        + f"─▶ {'head.' + t:<{width}} ─▶ {len(labels)} probabilities"
        for i, (t, labels) in enumerate(ctx.tasks.items())
    )


def sharing_markdown(ctx: AppContext) -> str:
    """What one visitor may use of the shared machine: the limits in force (ctx.limits, the gate)."""
    limits, gate = ctx.limits, ctx.training_gate
    sentences = f"{limits.train_sentences:,}" if limits.train_sentences else "all the"
    spoof = " A model another visitor saved says so in the picker." if ctx.public else ""
    return f"""
## Sharing this app
Everyone here shares one machine, so what one visitor can take is capped (these are the limits in force):
- **Training** (a run, a live sweep or LogME): {gate.slots} at a time and {gate.capacity - gate.slots} more \
waiting its turn; beyond that, Start says the app is busy and predictions go on as usual. A run stops after \
{format_seconds(time_limit(ctx))} (keeping what it learned so far), and one that waits is dropped when its page \
closes. Up to {limits.max_epochs} epochs ({limits.max_epochs_heads_only} with the whole encoder frozen) and \
{sentences} training sentences per run.
- **Trained models** stay in memory for the {limits.session_models} sessions that trained most recently.
- **Saved models**: {limits.session_saved_models} per browser session and {limits.saved_models} in all; you can \
delete the ones you saved.{spoof}
"""


def about_markdown(ctx: AppContext) -> str:
    """The About tab: the model, how its heads share the encoder, freezing, what the experiments
    measured (from results/sweep.json) and the shipped model's training."""
    meta = ctx.default_model.checkpoint_meta or {}
    train = meta.get("train") or {}
    shipped = (meta.get("metrics") or {}).get("validation")
    tasks = " and ".join(f"**{t}** ({len(labels)} labels: {', '.join(labels)})" for t, labels in ctx.tasks.items())
    diagram = heads_diagram(ctx)
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in FREEZE_SCENARIOS)
    measured = measured_markdown(load_results())
    return f"""
## What the model is
A **multi-task sentence transformer**: one pretrained sentence encoder, all-MiniLM-L6-v2 (6 transformer
layers, 384-number sentence vectors, 22.7 million parameters), with one small head per task: {tasks}.
Each head is just dropout and one linear layer, a few thousand parameters.

## How the heads share the encoder
```
sentence ─▶ tokens ─▶ embeddings ─▶ layer.0 … layer.5 ─▶ pooling ─▶ sentence vector (384 numbers)
{diagram}
```
1. A sentence is split into tokens; each token becomes a vector (**embeddings**), and the 6 **transformer
   layers** refine those vectors using the rest of the sentence.
2. **Pooling** turns the token vectors into one sentence vector: their mean, by default (the Embeddings tab
   lets you try the first-token "CLS" vector or the per-dimension maximum instead).
3. Every **head** reads that same vector and turns it into probabilities over its labels.

The encoder runs **once** per sentence and all heads read its output, so Predict answers both questions
with one forward pass. In training, each task's error flows back into the shared encoder: what one task
teaches it can help the other, or compete with it. **Task mixing** decides how the tasks take turns:
*joint* trains all of them on every batch; *alternate* gives each task its own batches in turn;
*proportional* and *temperature* draw the task of each batch at random, by how much data it has
(temperature evens the odds).

## Freezing, and when to use each scenario
A frozen component keeps its weights exactly; only the rest learns. Freezing saves compute, keeps what
a part already knows, and makes saved models smaller.

| scenario | frozen | what it does, and when to use it |
|---|---|---|
{table}

## What the experiments measured
{measured}

The Experiments tab has every sweep (freeze scenarios, the layer curve, multi-task against single-task,
task mixing, LogME) with charts; the README explains what the numbers mean.

## The data and the shipped model
12,380 original English sentences written for this project, each with a topic and a sentiment, in seven
registers: 2,304 crafted hard cases (corpus v1) and 10,076 in the styles people type (corpus v2: headlines,
social posts, reviews, financial statements, forum and chat, news reports). The shipped model trained on
the training split of both (8,749 sentences), the one the Train tab draws its sentences from, with
freeze `{train.get("freeze", "?")}` for {train.get("epochs", "?")} epochs. {accuracy_line(shipped)}.

## Beyond the browser
Everything here is also a command (`python -m mtl predict --text "..."`, `python -m mtl train ...`), and
every button is an API endpoint: see "Use via API" at the bottom of the page, or
`gradio_client.Client(url).predict("Not bad at all for a budget airline.", "default", api_name="/predict")`.
{sharing_markdown(ctx)}"""


def build_tab(ctx: AppContext) -> None:
    """Lay out the About tab (no events)."""
    gr.Markdown(about_markdown(ctx))
