"""The committed results as the app shows them: the sweep (results/sweep.json, made by `python -m mtl
sweep`) as tables, chart data and Markdown, and the LogME scores (results/logme.json). Read with
mtl.results; nothing here trains."""

import json
from pathlib import Path

import pandas as pd

from mtl.errors import DataError
from mtl.results import layer_f1, read_results

from .context import ROOT, md_escape

RESULTS = ROOT / "results"


def load_results(path=None) -> dict | None:
    """The committed results, or None when they are missing or unreadable (the tab then says so)."""
    try:
        return read_results(path or RESULTS / "sweep.json")
    except (DataError, OSError):
        return None


def mean_std(m: dict) -> str:
    """A summary's {"mean", "std"} as "0.915 ± 0.007"."""
    return f"{m['mean']:.3f} ± {m['std']:.3f}"


def results_table(results: dict | None, sweep: str | None = None) -> pd.DataFrame:
    """One row per setting: per-task accuracy and macro-F1 (mean ± std over seeds), params, time."""
    if not results:
        return pd.DataFrame({"": ["No results yet: run `python -m mtl sweep` to create results/sweep.json."]})
    rows = []
    for r in results["summary"]:
        if sweep and r["sweep"] != sweep:
            continue
        row = {"sweep": r["sweep"], "setting": r["name"]}
        for task, m in r["test"].items():
            row[f"{task} accuracy"] = mean_std(m["accuracy"])
            row[f"{task} macro-F1"] = mean_std(m["macro_f1"])
        row["trainable params"] = f"{r['trainable_params']:,}"
        row["train time (s)"] = f"{r['seconds']['mean']:.1f}"
        rows.append(row)
    return pd.DataFrame(rows).fillna("–")


def bars(results: dict | None, sweep: str, metric: str = "accuracy") -> pd.DataFrame:
    """Long format for a bar chart: setting, task, value (mean test metric)."""
    rows = []
    for r in (results or {}).get("summary", []):
        if r["sweep"] == sweep:
            for task, m in r["test"].items():
                rows.append({"setting": r["name"], "task": task, metric: m[metric]["mean"]})
    return pd.DataFrame(rows, columns=["setting", "task", metric])


def costs(results: dict | None, sweep: str) -> pd.DataFrame:
    """What each setting of a sweep cost: trainable parameters (millions) and training time (s)."""
    rows = [
        {
            "setting": r["name"],
            "trainable params (millions)": r["trainable_params"] / 1e6,
            "train time (s)": r["seconds"]["mean"],
        }
        for r in (results or {}).get("summary", [])
        if r["sweep"] == sweep
    ]
    return pd.DataFrame(rows, columns=["setting", "trainable params (millions)", "train time (s)"])


def layer_curve(results: dict | None) -> pd.DataFrame:
    """Test macro-F1 against K, the number of bottom layers frozen (-1: nothing frozen)."""
    f1 = layer_f1((results or {}).get("summary", []))
    rows = [{"layers frozen (K)": k, "task": t, "macro-F1": v} for k in sorted(f1) for t, v in f1[k].items()]
    return pd.DataFrame(rows, columns=["layers frozen (K)", "task", "macro-F1"])


def provenance(results: dict | None) -> str:
    """Where the numbers come from: the command, seeds, epochs and machine."""
    if not results:
        return "No committed results found (results/sweep.json)."
    machine = results.get("machine", {})
    return (
        f"From `{md_escape(results.get('command', 'python -m mtl sweep'))}`: {results.get('seeds')} seeds, "
        f"{results.get('epochs')} epochs per run, on {md_escape(str(machine.get('cpu', '?')))} "
        f"({machine.get('threads', '?')} threads). Test split, mean ± standard deviation over seeds."
        + ("" if results.get("complete", True) else f" **Partial**: {len(results.get('runs', []))} runs so far.")
    )


def measured_markdown(results: dict | None) -> str:
    """The About tab's summary of the committed results: the freeze scenarios and the layer curve,
    read from the results file so the page never states a number the sweep did not produce."""
    if not results:
        return "No committed results yet: `python -m mtl sweep` writes them to results/sweep.json."
    rows = [r for r in results["summary"] if r["sweep"] == "freeze"]
    tasks = list(rows[0]["test"]) if rows else []
    out = []
    if rows:
        out += [
            "| setting | " + " | ".join(f"{t} accuracy" for t in tasks) + " | trainable params | train time |",
            "|---" * (len(tasks) + 3) + "|",
        ]
        for r in rows:
            accs = " | ".join(f"{r['test'][t]['accuracy']['mean']:.3f}" for t in tasks)
            out.append(f"| {r['name']} | {accs} | {r['trainable_params']:,} | {r['seconds']['mean']:.0f} s |")
    f1 = layer_f1(results["summary"])
    if f1:
        ks = sorted(k for k in f1 if k >= 0) + ([-1] if -1 in f1 else [])  # nothing frozen (embeddings too) last
        out += [
            "",
            "Freezing the embeddings plus the bottom K layers (test macro-F1):",
            "",
            "| task | " + " | ".join(f"K={k}" if k >= 0 else "nothing frozen" for k in ks) + " |",
            "|---" * (len(ks) + 1) + "|",
        ]
        for task in dict.fromkeys(t for k in ks for t in f1[k]):
            out.append(f"| {task} | " + " | ".join(f"{f1[k][task]:.3f}" if task in f1[k] else "–" for k in ks) + " |")
    return "\n".join(out) + "\n\n" + provenance(results)


def logme_table(path=None) -> pd.DataFrame:
    """The committed LogME scores: one row per encoder, pooling and layer output, one column per task."""
    path = Path(path or RESULTS / "logme.json")
    if not path.is_file():
        return pd.DataFrame({"": ["No LogME scores yet: run `python -m mtl logme --output results/logme.json`."]})
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    for section in ("encoders", "pooling", "layers"):
        for name, scores in data[section].items():
            label = f"output of layer {name}" if section == "layers" else name
            rows.append({"what": section, "candidate": label, **{t: round(v, 4) for t, v in scores.items()}})
    return pd.DataFrame(rows)


def logme_agreement_markdown(path=None) -> str:
    """Whether LogME's ranking of layers agrees with the measured layer curve (`logme --sweep`)."""
    path = Path(path or RESULTS / "logme.json")
    try:
        agreement = json.loads(path.read_text(encoding="utf-8")).get("layer_curve_agreement")
    except (OSError, json.JSONDecodeError):
        return ""
    if not agreement:
        return ""
    lines = [
        "**LogME's ranking of layers against the layer freezing curve.** Freezing the bottom K layers "
        "trains on top of hidden state K; the Spearman correlation over K between LogME of that state and "
        "the measured test macro-F1 of `bottom:K` (+1: LogME ranks the settings as training does):",
        "",
    ]
    for task, a in agreement.items():
        pairs = ", ".join(f"K={p['K']} {p['logme']:+.3f} / {p['macro_f1']:.3f}" for p in a["pairs"])
        lines.append(f"- {task}: **{a['spearman']:+.2f}** (LogME / macro-F1: {pairs})")
    return "\n".join(lines)
