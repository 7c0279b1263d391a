"""What the README-figures tests share: the committed result files and how the README writes their figures."""

import csv
import json

from conftest import REPO

README = REPO / "README.md"
SHIPPED = REPO / "bench" / "results" / "shipped_model.json"
READ_MISTAKES = REPO / "results" / "errors" / "batch3" / "reviews_topic_mistakes_read.csv"


def pair(topic: float, sentiment: float) -> str:
    return f"{topic:.3f} / {sentiment:.3f}"


def result_runs(path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["runs"]


def section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def change(a: float, b: float) -> str:
    """a - b in points with its sign, as the README writes a change: +1.4, -0.6."""
    return f"{100 * (a - b):+.1f}"


def loro_runs(name: str, recipe: str) -> list[dict]:
    return [r for r in result_runs(REPO / "results" / f"{name}.json") if r["name"].startswith(recipe)]


def register_mean(runs: list[dict], register: str, task: str, seed=None) -> float:
    accs = [r["test"][task]["accuracy"] for r in runs if r["held_out"] == register and seed in (None, r["seed"])]
    return sum(accs) / len(accs)


def read_mistakes(path=READ_MISTAKES) -> list[dict]:
    """Held-out mistakes read one by one and given a kind: by default the review topic mistakes of the seed-0
    model with batch 3."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
