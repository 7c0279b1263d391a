"""The Embeddings tab: cosine similarities between sentences as a heatmap, the most and least similar
pairs, and a 2-D PCA projection, with the pooling switched on the fly."""

import html
import time

import gradio as gr
import numpy as np
import pandas as pd

from mtl.config import POOLING_MODES
from mtl.encoder import encode

from .context import LOCAL_LIMITS, MAX_INPUT_CHARS, MAX_SENTENCE_CHARS, AppContext, UIError, md_escape
from .handlers import notify, shows_errors
from .inputs import clean_text, expect, readable, shorten

MAX_EMBED_SENTENCES = LOCAL_LIMITS.embed_sentences  # rows of the heatmap (ctx.limits: those in force)
LABEL_COLORS = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d"]
# pairs on one subject in two registers (headline and post, news and figures, forum and report, two
# reviews): similar meaning should read as similar whatever the style
EMBED_EXAMPLE = """Rovers Snatch Late Winner to Reach Cup Final
what a goal in the 90th minute!!! we're going to the final ⚽ #COYR
The central bank raised interest rates by half a point on Thursday.
Net interest income rose 6 % as the bank passed higher rates on to borrowers.
Has anyone had the new flu jab? My arm is still sore two days later.
The vaccine cut hospital admissions by forty percent in the trial, researchers said.
Our flight was delayed six hours and the airline offered no help at all.
Two stars: the room smelled of smoke and the 'sea view' was a car park."""


def parse_sentences(
    text, limit: int = MAX_EMBED_SENTENCES, max_chars: int = MAX_SENTENCE_CHARS, max_input: int = MAX_INPUT_CHARS
) -> tuple[list[str], list[str]]:
    """Non-empty lines, at most `limit` of them and `max_chars` each; notes say what was cut."""
    text = expect(text, "text", "The sentences", optional=True) or ""
    if len(text) > max_input:
        raise UIError(f"The text is {len(text):,} characters long; the limit is {max_input:,}.")
    lines = [line.strip() for line in clean_text(text).splitlines() if line.strip()]
    notes = []
    unreadable = sum(not readable(line) for line in lines)
    if unreadable:
        lines = [line for line in lines if readable(line)]
        notes.append(f"{unreadable} line(s) with no letters, digits or symbols were skipped.")
    if len(lines) < 2:
        raise UIError("Enter at least two sentences, one per line, to compare them.")
    if len(lines) > limit:
        notes.append(f"{len(lines)} sentences entered: the first {limit} are compared (the heatmap's limit).")
        lines = lines[:limit]
    if any(len(s) > max_chars for s in lines):
        notes.append(f"Lines longer than {max_chars:,} characters were shortened.")
        lines = [s[:max_chars] for s in lines]
    return lines, notes


def cosine_matrix(emb: np.ndarray) -> np.ndarray:
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return np.clip(unit @ unit.T, -1.0, 1.0)


def extreme_pairs(sim: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """(most similar pair, least similar pair) of different sentences, as index pairs i < j."""
    i, j = np.triu_indices(len(sim), k=1)
    values = sim[i, j]
    hi, lo = int(np.argmax(values)), int(np.argmin(values))
    return (int(i[hi]), int(j[hi])), (int(i[lo]), int(j[lo]))


def pca_2d(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) coordinates on the first two principal components and their share of the variance."""
    x = emb.astype(np.float64) - emb.mean(axis=0, keepdims=True)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    k = min(2, len(s))
    signs = np.sign(vt[:k][np.arange(k), np.abs(vt[:k]).argmax(axis=1)])  # a fixed orientation
    coords = np.zeros((len(emb), 2))
    coords[:, :k] = u[:, :k] * s[:k] * signs
    total = float((s**2).sum())
    ratio = np.zeros(2)
    if total > 0:
        ratio[:k] = s[:k] ** 2 / total
    return coords, ratio


_BLUES = [(0.0, (247, 251, 255)), (0.25, (198, 219, 239)), (0.5, (107, 174, 214)), (0.75, (33, 113, 181))]
_BLUES.append((1.0, (8, 48, 107)))


def cell_color(value: float) -> tuple[str, str]:
    """(background, text colour) for a cosine similarity: blues for 0..1, reds below 0."""
    if value < 0:
        t = min(1.0, -value)
        rgb = tuple(round(255 + (c - 255) * t) for c in (239, 138, 98))
        return f"rgb{rgb}", "#1f2937"
    for (x0, c0), (x1, c1) in zip(_BLUES, _BLUES[1:]):
        if value <= x1:
            t = (value - x0) / (x1 - x0)
            rgb = tuple(round(a + (b - a) * t) for a, b in zip(c0, c1))
            return f"rgb{rgb}", ("#ffffff" if value > 0.55 else "#1f2937")
    return "rgb(8, 48, 107)", "#ffffff"


def two_decimals(value: float) -> str:
    """A similarity with two decimals, without a "-0.00"."""
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def heatmap_html(sentences: list[str], sim: np.ndarray, pair: tuple[int, int] | None = None) -> str:
    """A cosine-similarity heatmap as an HTML table, sentences as row and column labels."""
    esc = html.escape
    head = "".join(
        f'<th class="col" title="{esc(s)}"><div>{k + 1} · {esc(shorten(s, 30))}</div></th>'
        for k, s in enumerate(sentences)
    )
    rows = []
    for a, s in enumerate(sentences):
        cells = []
        for b in range(len(sentences)):
            bg, fg = cell_color(float(sim[a, b]))
            cls = "diag" if a == b else ("best" if pair and {a, b} == set(pair) else "")
            tip = f"{a + 1} ↔ {b + 1}: {sim[a, b]:.3f}"
            cells.append(
                f'<td class="{cls}" style="background:{bg};color:{fg}" title="{tip}">{two_decimals(sim[a, b])}</td>'
            )
        rows.append(f'<tr><th class="row" title="{esc(s)}">{a + 1} · {esc(shorten(s, 46))}</th>{"".join(cells)}</tr>')
    return (
        '<div class="mtl-heatmap"><div class="mtl-heatmap-title">Cosine similarity of every pair '
        "(outlined: the most similar pair; hover a cell or a label for details)</div>"
        '<table><thead><tr><th class="corner">cosine similarity</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def scatter_table(sentences: list[str], coords: np.ndarray, labels: list[str], task: str, all_labels) -> pd.DataFrame:
    """The PCA plot's rows: coordinates, the sentence and its predicted label for `task`."""
    column = f"predicted {task}"
    scatter = pd.DataFrame(
        {
            "PC1": coords[:, 0].round(4),
            "PC2": coords[:, 1].round(4),
            "sentence": [f"{k + 1} · {shorten(s, 70)}" for k, s in enumerate(sentences)],
            column: labels,
        }
    )
    # One row without coordinates (not drawn) per label no sentence got: the plot takes its colour
    # legend from the first data it shows and keeps it, so every label must be there from the start.
    missing = [lab for lab in all_labels if lab not in set(labels)]
    blank = pd.DataFrame({"PC1": np.nan, "PC2": np.nan, "sentence": "", column: missing})
    return pd.concat([scatter, blank], ignore_index=True)


def embed_sentences(ctx: AppContext, text, pooling, choice, session) -> dict:
    """Everything the Embeddings tab shows: {heatmap (HTML), summary (Markdown), scatter (PCA table),
    variance (of PC1, PC2), dim, pair (most similar), similarity (matrix), notes}."""
    if expect(pooling, "text", "The pooling") not in POOLING_MODES:
        raise UIError(f"Pooling must be one of {', '.join(POOLING_MODES)}.")
    ctx.note_request()
    limits = ctx.limits
    sentences, notes = parse_sentences(text, limits.embed_sentences, limits.sentence_chars, limits.input_chars)
    model, name = ctx.resolve(choice, session)
    t0 = time.perf_counter()
    with ctx.model_lock(model):
        emb = encode(model.encoder, sentences, pooling=pooling)  # (N, dim)
        preds = model.predict(sentences)
    ms = (time.perf_counter() - t0) * 1000
    sim = cosine_matrix(emb)
    (a, b), (c, d) = extreme_pairs(sim)
    coords, ratio = pca_2d(emb)
    task = next(iter(model.tasks))
    scatter = scatter_table(sentences, coords, [p[task]["label"] for p in preds], task, model.tasks[task])
    trained = model.config.pooling
    pool_note = "" if pooling == trained else f" (the model was trained with {trained} pooling)"
    summary = (
        f"**Most similar:** {a + 1} and {b + 1}, cosine **{two_decimals(sim[a, b])}**  \n"
        f"> {md_escape(shorten(sentences[a], 110))}  \n> {md_escape(shorten(sentences[b], 110))}\n\n"
        f"**Least similar:** {c + 1} and {d + 1}, cosine {two_decimals(sim[c, d])}\n\n"
        f"**Embedding size:** {emb.shape[1]} numbers per sentence · pooling: {pooling}{pool_note} · "
        f"model: {md_escape(name)} · {len(sentences)} sentences in {ms:.0f} ms"
    )
    return {
        "heatmap": heatmap_html(sentences, sim, (a, b)),
        "summary": summary,
        "scatter": scatter,
        "variance": ratio,
        "dim": int(emb.shape[1]),
        "pair": (a, b),
        "similarity": sim,
        "notes": notes,
    }


def build_tab(ctx: AppContext, demo: gr.Blocks, picker: gr.Dropdown, session: gr.State) -> None:
    """Lay out the Embeddings tab and wire it: Compare, a new pooling, and the page's first load."""
    first_task = next(iter(ctx.tasks))
    gr.Markdown(
        "Each sentence becomes one vector from the shared encoder. Similar meaning, similar vector: "
        "the heatmap shows the **cosine similarity** of every pair (1 = same direction), the plot "
        "flattens the vectors to two dimensions.",
        elem_classes="mtl-note",
    )
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            text = gr.Textbox(
                EMBED_EXAMPLE,
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
            compare = gr.Button("Compare sentences", variant="primary")
            status = gr.Markdown()
        with gr.Column(scale=3, min_width=360):
            heatmap = gr.HTML(label="Cosine similarity", min_height=200, elem_id="heatmap")
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            summary = gr.Markdown(container=True, padding=True)
        with gr.Column(scale=3, min_width=360):
            scatter = gr.ScatterPlot(
                x="PC1",
                y="PC2",
                color=f"predicted {first_task}",
                tooltip=["sentence", f"predicted {first_task}"],
                color_map={lab: LABEL_COLORS[i % len(LABEL_COLORS)] for i, lab in enumerate(ctx.tasks[first_task])},
                title=f"2-D projection (PCA), coloured by predicted {first_task}",
                height=340,
                label="PCA",
                show_label=False,
            )

    @shows_errors(outputs=4)
    def embed(text, pooling, choice, session):
        r = embed_sentences(ctx, text, pooling, choice, session)
        for note in r["notes"]:
            notify(note)
        v1, v2 = r["variance"]
        plot = gr.ScatterPlot(value=r["scatter"], x_title=f"PC1 ({v1:.0%} of the variance)", y_title=f"PC2 ({v2:.0%})")
        return r["heatmap"], r["summary"], plot, " ".join(f"⚠ {md_escape(n)}" for n in r["notes"])

    inputs, outputs = [text, pooling, picker, session], [heatmap, summary, scatter, status]
    compare.click(embed, inputs, outputs, api_name="embed")
    pooling.input(embed, inputs, outputs, api_name="embed_pooling")
    demo.load(embed, inputs, outputs, api_name="embed_on_load")
