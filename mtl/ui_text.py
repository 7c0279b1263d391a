"""The app's text and style: the About tab, the Experiments notes, the page's CSS."""

from .ui import AppContext, accuracy_line
from .ui_experiments import load_results, measured_markdown

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

APP_CSS = """
.gradio-container { max-width: 1280px !important; margin: 0 auto !important; }
.mtl-hero { padding: 18px 4px 6px; }
.mtl-hero h1 { font-size: 28px; font-weight: 750; margin: 0; letter-spacing: -0.02em; }
.mtl-hero h1 span { color: var(--color-accent); }
.mtl-hero p { margin: 6px 0 0; font-size: 15px; color: var(--body-text-color-subdued); max-width: 900px; }
.mtl-note { font-size: 13px; color: var(--body-text-color-subdued); }
.mtl-progress { border: 1px solid var(--border-color-primary); border-radius: var(--radius-lg);
  padding: 12px 14px; background: var(--block-background-fill); }
.mtl-progress-head { display: flex; justify-content: space-between; font-weight: 600; margin-bottom: 8px; }
.mtl-bar { height: 10px; border-radius: 999px; background: var(--neutral-200); overflow: hidden; }
.dark .mtl-bar { background: var(--neutral-700); }
.mtl-bar > div { height: 100%; background: var(--color-accent); transition: width 0.3s ease; }
.mtl-done .mtl-bar > div { background: #10b981; }
.mtl-stopped .mtl-bar > div { background: #f59e0b; }
.mtl-error .mtl-bar > div { background: #ef4444; }
.mtl-progress-foot { margin-top: 6px; font-size: 13px; color: var(--body-text-color-subdued); }
#model-bar { align-items: center; }
"""

EXPERIMENTS_NOTE = """
### What freezing and multi-task training really do, measured
Every number here comes from `python -m mtl sweep`: each setting trained on the same data with
several seeds, scored on the test split. The tables show mean ± standard deviation over seeds.
"""

SWEEP_NOTES = {
    "freeze": "The classic scenarios. *Entire network frozen* is the untrained heads on the pretrained "
    "encoder: no learning at all. The encoder probe (in the JSON) says what training did to the shared "
    "encoder for each task, even when that task's head stayed frozen and random. *Heads trained 10x longer* "
    "shows what a frozen encoder reaches once its heads converge (cheap: the encoder's output is cached).",
    "layers": "After Lee, Tang and Lin (2019): freeze the embeddings plus the bottom K layers and fine-tune "
    "the rest. K = 6 is the whole encoder frozen; -1 is full fine-tuning (embeddings too).",
    "tasks": "One model per task against one model for both, at the same budget, and the linear-probe "
    "baseline: logistic regression on frozen embeddings.",
    "mixing": "How batches mix the tasks (at the shipped model's freeze setting, bottom:2), and learned "
    "uncertainty weighting of the task losses (Kendall, Gal and Cipolla 2018).",
    "logme": "LogME (You et al. 2021) scores frozen features without training: higher means the labels "
    "are more linearly predictable. From `python -m mtl logme --sweep results/sweep.json --output results/logme.json`.",
}


def about_markdown(ctx: AppContext) -> str:
    meta = getattr(ctx.default_model, "checkpoint_meta", {}) or {}
    train = meta.get("train") or {}
    shipped = (meta.get("metrics") or {}).get("validation")
    tasks = " and ".join(f"**{t}** ({len(labels)} labels: {', '.join(labels)})" for t, labels in ctx.tasks.items())
    width = max(len(t) for t in ctx.tasks) + 5
    diagram = "\n".join(
        " " * 69
        + ("└" if i == len(ctx.tasks) - 1 else "├")
        + f"─▶ {'head.' + t:<{width}} ─▶ {len(labels)} probabilities"
        for i, (t, labels) in enumerate(ctx.tasks.items())
    )
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
2,304 original English sentences written for this project, each with a topic and a sentiment: 1,632 to
train, 336 to validate, 336 held out for testing. The shipped model was trained with freeze
`{train.get("freeze", "?")}` for {train.get("epochs", "?")} epochs. {accuracy_line(shipped)}.

## Beyond the browser
Everything here is also a command (`python -m mtl predict --text "..."`, `python -m mtl train ...`), and
every button is an API endpoint: see "Use via API" at the bottom of the page, or
`gradio_client.Client(url).predict("Not bad at all for a budget airline.", "default", api_name="/predict")`.
"""
