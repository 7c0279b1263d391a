"""Sweep results: per-configuration summaries over seeds, the Markdown tables, the layer freezing curve
(layer_f1, layer_shares) and the results file (read_results, write_results). Plain data in, plain data out:
`python -m mtl sweep` writes these files, LogME scoring (mtl/transfer.py) and the app read them, and
none of them needs the trainer."""

import json
import statistics
from pathlib import Path

from .bounded_json import JSONLimitError, parse_json
from .errors import DataError
from .io import write_atomic


def mean_and_std(values) -> dict:
    """{"mean", "std"} over seeds (std 0 for one seed); None values (a metric a run lacks) are skipped."""
    values = [v for v in values if v is not None]
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def summarise(runs: list[dict]) -> list[dict]:
    """One row per (sweep, config): mean and std over seeds of every metric."""
    rows = {}
    for r in runs:
        rows.setdefault((r["sweep"], r["name"]), []).append(r)
    out = []
    for (sweep, name), group in rows.items():
        first = group[0]
        row = {
            "sweep": sweep,
            "name": name,
            "config": first["config"],
            "seeds": [g["seed"] for g in group],
            "trainable_params": first["trainable_params"],
            "seconds": mean_and_std([g["seconds"] for g in group]),
            "test": {},
        }
        for task in first["test"]:
            row["test"][task] = {k: mean_and_std([g["test"][task][k] for g in group]) for k in ("accuracy", "macro_f1")}
        if "encoder_probe" in first:
            row["encoder_probe"] = {
                t: mean_and_std([g["encoder_probe"][t]["accuracy"] for g in group]) for t in first["encoder_probe"]
            }
        out.append(row)
    return out


def markdown(summary: list[dict]) -> str:
    """The summary as Markdown: one table per sweep (mean ± std of test accuracy and macro-F1, trainable
    parameters, train time), the layer curve's shares under the layers sweep, and the total cost."""
    tasks = sorted({t for row in summary for t in row["test"]})
    lines = []
    for sweep in dict.fromkeys(row["sweep"] for row in summary):
        lines += [
            f"### {sweep}",
            "",
            "| setting | " + " | ".join(f"{t} acc | {t} F1" for t in tasks) + " | trainable params | train time |",
            "|---|" + "---|---|" * len(tasks) + "---|---|",
        ]
        for row in (r for r in summary if r["sweep"] == sweep):
            cells = []
            for t in tasks:
                m = row["test"].get(t)
                cells += (
                    ["–", "–"]
                    if m is None
                    else [
                        f"{m['accuracy']['mean']:.3f} ± {m['accuracy']['std']:.3f}",
                        f"{m['macro_f1']['mean']:.3f} ± {m['macro_f1']['std']:.3f}",
                    ]
                )
            lines.append(
                f"| {row['name']} | "
                + " | ".join(cells)
                + f" | {row['trainable_params']:,} | {row['seconds']['mean']:.0f} s |"
            )
        lines.append("")
        if sweep == "layers":
            lines += layer_shares(summary, tasks)
    distinct = {config_key(r["config"]): r for r in summary}.values()  # a setting in several sweeps ran once
    runs = sum(len(r["seeds"]) for r in distinct)
    minutes = sum(r["seconds"]["mean"] * len(r["seeds"]) for r in distinct) / 60
    lines.append(f"{runs} distinct runs, {minutes:.0f} minutes of training in all.")
    return "\n".join(lines)


def layer_f1(summary: list[dict]) -> dict[int, dict[str, float]]:
    """The layer freezing curve of a sweep summary: {K: {task: mean test macro-F1}}, K = -1 for nothing
    frozen (the embeddings train too)."""
    return {
        r["config"]["layers_frozen"]: {t: m["macro_f1"]["mean"] for t, m in r["test"].items()}
        for r in summary
        if r["sweep"] == "layers" and "layers_frozen" in r["config"]
    }


def layer_shares(summary: list[dict], tasks: list[str]) -> list[str]:
    """The layer curve against full fine-tuning, two ways: the macro-F1 of bottom:K as a share of full
    fine-tuning's (how Lee et al. state their result), and the share of the gain that fine-tuning adds
    over the frozen encoder (bottom:N) that bottom:K recovers."""
    f1 = layer_f1(summary)
    ks = sorted(k for k in f1 if k >= 0)
    if -1 not in f1 or not ks:
        return []
    full, frozen = f1[-1], f1[ks[-1]]
    head = " | ".join(f"{t}: share of full F1 | {t}: share of the gain" for t in tasks)
    lines = [f"| K | {head} |", "|---|" + "---|---|" * len(tasks)]
    for k in ks:
        cells = []
        for t in tasks:
            gain = full[t] - frozen[t]
            cells += [f"{f1[k][t] / full[t]:.1%}", f"{(f1[k][t] - frozen[t]) / gain:.0%}" if gain > 0 else "–"]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return lines + [""]


def config_key(cfg: dict) -> str:
    """What a sweep configuration trains, as a string: configs with equal keys are the same run, whatever
    their name or table labels (so a setting in several sweeps trains once)."""
    return json.dumps(
        {k: v for k, v in cfg.items() if k not in ("name", "layers_frozen", "probe_encoder")}, sort_keys=True
    )


def run_key(run: dict) -> tuple:
    """Which run of a results file this is: its sweep, what it trains, its seed and (leave one register
    out) the register held out; a renamed configuration's run keeps its key."""
    return run.get("sweep"), config_key(run.get("config", {})), run.get("seed", 0), run.get("held_out")


def read_results(path) -> dict:
    """A results file written by write_results, or a one-line DataError saying what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such results file (python -m mtl sweep writes one)")
    try:
        payload = parse_json(path.read_text(encoding="utf-8"))
    except JSONLimitError as e:
        raise DataError(f"{path}: line {e.lineno}: {e.msg}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a results file ({e})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("runs"), list):
        raise DataError(f"{path}: not a results file (no list of runs)")
    try:
        payload["summary"] = summary_of(payload["runs"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{path}: a run in it is malformed ({type(e).__name__}: {e})") from None
    return payload


def write_results(path, payload: dict) -> tuple[Path, Path]:
    """Write the payload as JSON and its summary as Markdown beside it (.md), each atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    md = path.with_suffix(".md")
    render = loro_markdown if is_loro(payload["runs"]) else markdown
    write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=2) + "\n"))
    write_atomic(md, lambda tmp: Path(tmp).write_text(render(payload["summary"]) + "\n"))
    return path, md


def is_loro(runs: list[dict]) -> bool:
    return bool(runs) and all("held_out" in r for r in runs)


def summary_of(runs: list[dict]) -> list[dict]:
    """The summary that fits the runs: leave-one-register-out or ordinary sweeps."""
    return loro_summary(runs) if is_loro(runs) else summarise(runs)


def loro_summary(runs: list[dict]) -> list[dict]:
    """One row per configuration: per held-out register the mean (and std) over seeds of test accuracy and
    macro-F1; over registers, the mean of those means and the worst register, per task."""
    by_name: dict[str, list[dict]] = {}
    for r in runs:
        by_name.setdefault(r["name"], []).append(r)
    out = []
    for name, group in by_name.items():
        group = complete_seeds(group)
        registers: dict[str, list[dict]] = {}
        for r in group:
            registers.setdefault(r["held_out"], []).append(r)
        tasks = list(dict.fromkeys(t for r in group for t in r["test"]))
        per_register = {
            reg: {t: {k: mean_and_std([r["test"][t][k] for r in rs]) for k in ("accuracy", "macro_f1")} for t in tasks}
            for reg, rs in registers.items()
        }
        mean, worst = {}, {}
        for t in tasks:
            accs = {reg: m[t]["accuracy"]["mean"] for reg, m in per_register.items()}
            mean[t] = {
                k: statistics.fmean(m[t][k]["mean"] for m in per_register.values()) for k in ("accuracy", "macro_f1")
            }
            low = min(accs, key=accs.get)
            worst[t] = {"register": low, "accuracy": accs[low]}
        seconds = sum({(r["seed"], tuple(r.get("trained_on", []))): r["seconds"] for r in group}.values())
        seeds = sorted({r["seed"] for r in group})
        out.append(
            {
                "name": name,
                "config": group[0]["config"],
                "seeds": seeds,
                "registers": per_register,
                "mean": mean,
                "worst": worst,
                "train_minutes": seconds / 60,
            }
        )
    return out


def complete_seeds(group: list[dict]) -> list[dict]:
    """The runs of the seeds that held out every register (an interrupted sweep leaves a seed half done, whose
    registers would otherwise be averaged over different numbers of seeds); all runs if no seed is complete."""
    registers = {r["held_out"] for r in group}
    done = [s for s in {r["seed"] for r in group} if {r["held_out"] for r in group if r["seed"] == s} == registers]
    return [r for r in group if r["seed"] in done] or group


def loro_markdown(summary: list[dict]) -> str:
    """Leave-one-register-out as Markdown: per configuration the mean over held-out registers and the worst
    one, per task; then accuracy per held-out register."""
    tasks = list(dict.fromkeys(t for row in summary for t in row["mean"]))
    head = " | ".join(f"{t}: mean acc | {t}: worst register" for t in tasks)
    lines = [
        "### Leave one register out",
        "",
        f"| configuration | {head} | seeds | train time |",
        "|---|" + "---|---|" * len(tasks) + "---|---|",
    ]
    for row in summary:
        cells = []
        for t in tasks:
            w = row["worst"][t]
            cells += [f"{row['mean'][t]['accuracy']:.3f}", f"{w['accuracy']:.3f} ({w['register']})"]
        lines.append(
            f"| {row['name']} | " + " | ".join(cells) + f" | {len(row['seeds'])} | {row['train_minutes']:.0f} min |"
        )
    registers = list(dict.fromkeys(reg for row in summary for reg in row["registers"]))
    lines += [
        "",
        "Accuracy on each held-out register (topic / sentiment, mean over seeds):",
        "",
        "| configuration | " + " | ".join(registers) + " |",
        "|---|" + "---|" * len(registers),
    ]
    for row in summary:
        cells = []
        for reg in registers:
            m = row["registers"].get(reg)
            cells.append("–" if m is None else " / ".join(f"{m[t]['accuracy']['mean']:.3f}" for t in tasks if t in m))
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
