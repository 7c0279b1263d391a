"""The app's fixed text and style: the page's CSS (one string, CSS, for launch) and the Experiments
tab's notes. Text computed from the model or the results lives with its tab."""

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

HEATMAP_CSS = """
.mtl-heatmap { overflow-x: auto; padding: 4px 0; }
.mtl-heatmap table { border: none !important; border-collapse: separate; border-spacing: 2px; font-size: 12px;
  margin: 0; width: auto; }
.mtl-heatmap-title { font-weight: 600; margin: 0 0 6px; }
.mtl-heatmap td, .mtl-heatmap th { border: none !important; }
.mtl-heatmap td { width: 42px; min-width: 42px; height: 30px; text-align: center; border-radius: 4px;
  font-variant-numeric: tabular-nums; padding: 0 !important; }
.mtl-heatmap td.diag { opacity: 0.45; }
.mtl-heatmap td.best { outline: 2px solid #f59e0b; outline-offset: -2px; font-weight: 700; }
.mtl-heatmap th.row { text-align: right; white-space: nowrap; font-weight: 500; padding: 0 8px 0 0 !important;
  max-width: 340px; overflow: hidden; text-overflow: ellipsis; background: none !important; }
.mtl-heatmap th.col { vertical-align: bottom; padding: 0 0 6px 0 !important; font-weight: 500;
  background: none !important; }
.mtl-heatmap th.col div { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap;
  max-height: 190px; overflow: hidden; text-overflow: ellipsis; margin: 0 auto; }
.mtl-heatmap th.corner { vertical-align: bottom; text-align: right; font-weight: 400; opacity: 0.6;
  padding: 0 8px 6px 0 !important; background: none !important; }
"""

CSS = APP_CSS + HEATMAP_CSS

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
    "mixing": "How batches mix the tasks (at bottom:2, the first shipped model's freeze setting), and learned "
    "uncertainty weighting of the task losses (Kendall, Gal and Cipolla 2018).",
    "logme": "LogME (You et al. 2021) scores frozen features without training: higher means the labels "
    "are more linearly predictable. From `python -m mtl logme --sweep results/sweep.json --output results/logme.json`.",
}
