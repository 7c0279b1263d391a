"""The README's measured figures for real text come from committed result files, not from memory."""

import json
import re
from collections import Counter

import readme_results as rr
from conftest import README_ROWS, REPO
from readme_results import README, SHIPPED

from mtl.results import loro_summary

# the benchmark screens, and the shipped model's benchmark before batch 2 joined the data (what the screens and the
# leave-one-register-out runs of the first batch compare with)
SCREENS = [REPO / "bench" / "results" / f"{name}.json" for name in ("wise_ft", "register_shots")]
SHIPPED_BEFORE = REPO / "bench" / "results" / "shipped_model_before_batch2.json"
PAIR = re.compile(r"\b\d\.\d{3} / \d\.\d{3}\b")  # "topic / sentiment" accuracy, as the README writes it


def _metric_pairs(node):
    """Every {topic: {accuracy}, sentiment: {accuracy}} in a JSON tree, as README pairs."""
    if isinstance(node, dict):
        if all(isinstance(node.get(t), dict) and "accuracy" in node[t] for t in ("topic", "sentiment")):
            yield rr.pair(node["topic"]["accuracy"], node["sentiment"]["accuracy"])
        for value in node.values():
            yield from _metric_pairs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _metric_pairs(value)


def _summaries(runs: list[dict]):
    """The library's leave-one-register-out summaries (what the sweep writes as .md): over every held-out
    register, over the six v2 registers (crafted, v1, left out: the v1-only recipe trains on it), and of
    each register alone (its mean over every seed that held it out, where a screen ran more seeds)."""
    yield from loro_summary(runs)
    yield from loro_summary([r for r in runs if r["held_out"] != "crafted"])
    for register in {r["held_out"] for r in runs}:
        yield from loro_summary([r for r in runs if r["held_out"] == register])


def _sources() -> set[str]:
    """Pairs the committed files give: every run of results/loro*.json (per seed), their summaries (per
    register, mean, worst register), the shipped model's benchmark now and before batch 2 (new model and the
    one it replaced, per register, and the new model's mean over the six v2 registers), and the benchmark
    screens of bench/wise_ft.py and bench/register_shots.py (every scored model)."""
    found = set()
    for path in sorted((REPO / "results").glob("loro*.json")):
        runs = rr.result_runs(path)
        found |= set(_metric_pairs(runs))
        for row in _summaries(runs):
            found |= {rr.pair(row[k]["topic"]["accuracy"], row[k]["sentiment"]["accuracy"]) for k in ("mean", "worst")}
            found |= {
                rr.pair(m["topic"]["accuracy"]["mean"], m["sentiment"]["accuracy"]["mean"])
                for m in row["registers"].values()
            }
    for path in (SHIPPED, SHIPPED_BEFORE):
        shipped = json.loads(path.read_text(encoding="utf-8"))
        v2 = shipped["test"]["data/v2/test.csv"]["by_register"]
        six = [m for register, m in v2.items() if register != "crafted"]  # in-distribution, as the means above
        found.add(rr.pair(*(sum(m[t]["accuracy"] for m in six) / len(six) for t in ("topic", "sentiment"))))
        found |= set(_metric_pairs(shipped))
    for path in SCREENS:
        found |= set(_metric_pairs(json.loads(path.read_text(encoding="utf-8"))))
    return found


def _six_register_rows() -> set[tuple]:
    """(seeds, topic mean, worst, its register, sentiment mean, worst, its register) of every configuration
    held out on all six v2 registers, as the README's summary table writes them."""
    rows = set()
    for path in sorted((REPO / "results").glob("loro*.json")):
        for row in loro_summary([r for r in rr.result_runs(path) if r["held_out"] != "crafted"]):
            if len(row["registers"]) == 6:
                cells = [len(row["seeds"])]
                for t in ("topic", "sentiment"):
                    w = row["worst"][t]
                    cells += [f"{row['mean'][t]['accuracy']:.3f}", f"{w['accuracy']:.3f}", w["register"]]
                rows.add(tuple(cells))
    return rows


def test_leave_one_register_out_figures_come_from_result_files():
    readme = README.read_text(encoding="utf-8")
    figures = PAIR.findall(rr.section(readme, "\n### Leave one register out\n"))
    assert len(figures) >= 20
    sources = _sources()
    assert [f for f in figures if f not in sources] == []


def test_previous_models_column_is_the_benchmarks_baseline():
    """The shipped-model table's last column is the replaced model, scored in the same benchmark run."""
    readme = README.read_text(encoding="utf-8")
    baseline = json.loads(SHIPPED.read_text(encoding="utf-8"))["baseline"]["test"]
    v2, v1 = baseline["data/v2/test.csv"], baseline["data/test.csv"]["metrics"]
    expected = {"v2, every register": v2["metrics"], "v1 (`data/test.csv`, v2's `crafted` register)": v1}
    expected |= {name: v2["by_register"][register] for name, register in README_ROWS.items()}
    rows = dict(
        re.findall(r"^\| ([^|]+) \| [0-9,]+ \| \d\.\d{3} \| \d\.\d{3} \| (\d\.\d{3} / \d\.\d{3}) \|$", readme, re.M)
    )
    assert rows.keys() == expected.keys()
    for name, metrics in expected.items():
        assert rows[name] == rr.pair(metrics["topic"]["accuracy"], metrics["sentiment"]["accuracy"]), name


def test_leave_one_register_out_summary_rows_come_from_result_files():
    section = rr.section(README.read_text(encoding="utf-8"), "\n### Leave one register out\n").replace("**", "")
    cell = r"(\d\.\d{3})"
    rows = re.findall(
        rf"^\| [^|]+ \| (\d+) \| {cell} \| {cell} \((\w+)\) \| {cell} \| {cell} \((\w+)\) \|$", section, re.M
    )
    assert len(rows) >= 3
    summaries = _six_register_rows()
    assert [r for r in rows if (int(r[0]), *r[1:]) not in summaries] == []


def _screen(name: str) -> dict:
    return json.loads((REPO / "bench" / "results" / f"{name}.json").read_text(encoding="utf-8"))


def _held_out_metrics(register: str) -> dict:
    """The WiSE-FT screen's fine-tuned end point (a = 1) on one held-out register: {task: metrics}."""
    (run,) = [r for r in _screen("wise_ft")["runs"] if r["held_out"] == register]
    return run["whole"]["1.0"]["held_out"]


def _recall(metrics: dict, label: str) -> float:
    i = metrics["labels"].index(label)
    return metrics["confusion"][i][i] / sum(metrics["confusion"][i])


def _mistakes(metrics: dict, gold=None, predicted=None) -> int:
    """Off-diagonal counts of a confusion matrix (rows gold, columns predicted), optionally of some labels."""
    labels, conf = metrics["labels"], metrics["confusion"]
    return sum(
        conf[i][j]
        for i, g in enumerate(labels)
        for j, p in enumerate(labels)
        if i != j and (gold is None or g in gold) and (predicted is None or p in predicted)
    )


def _points(a: float, b: float) -> str:
    return f"{100 * (a - b):.1f}"


def test_held_out_mistakes_and_screen_changes_come_from_result_files():
    """The derived figures of "What the held-out mistakes are", the WiSE-FT bullet and the labelled-sentence
    section (shares, counts, recalls, point changes) recomputed from bench/results."""
    text = " ".join(rr.section(README.read_text(encoding="utf-8"), "\n### Leave one register out\n").split())
    reviews, financial = (_held_out_metrics(r)["topic"] for r in ("reviews", "financial"))
    sentiment = _held_out_metrics("financial")["sentiment"]
    pair = {"Business", "Sports"}
    share = sum(sum(row) for label, row in zip(reviews["labels"], reviews["confusion"]) if label in pair)
    expected = [
        f"({_mistakes(reviews)} mistakes in {reviews['n']:,} sentences)",
        f"Business (recall {_recall(reviews, 'Business'):.3f}) and Sports ({_recall(reviews, 'Sports'):.3f})",
        f"{100 * share / reviews['n']:.0f} % of the sentences and "
        f"{100 * _mistakes(reviews, gold=pair) / _mistakes(reviews):.0f} % of the mistakes",
        f"({_mistakes(financial)} mistakes). "
        f"{_mistakes(financial, gold={'World', 'Politics', 'Science & Technology'}, predicted={'Business'})} are",
        f"World's recall is {_recall(financial, 'World'):.3f}",
        f"({_mistakes(sentiment)} mistakes). {_mistakes(sentiment, predicted={'neutral'})} are positive or negative",
        f"Positive recall is {_recall(sentiment, 'positive'):.3f}",
    ]
    shots = {(r["held_out"], r["shots"]): r["test"] for r in _screen("register_shots")["runs"]}
    gain = {
        (h, k, t): _points(shots[h, k][t]["accuracy"], shots[h, 0][t]["accuracy"])
        for h, k in shots
        for t in ("topic", "sentiment")
    }
    expected += [
        f"add {gain['reviews', 300, 'topic']} points of topic and {gain['reviews', 300, 'sentiment']} of sentiment "
        f"on reviews. On financial statements they add {gain['financial', 300, 'topic']} and "
        f"{gain['financial', 300, 'sentiment']}.",
        f"{gain['financial', 100, 'topic']} / {gain['financial', 100, 'sentiment']} on financial statements",
    ]
    wise = {r["held_out"]: r["whole"] for r in _screen("wise_ft")["runs"]}

    def wise_change(register, task, alpha="0.5"):
        return _points(
            wise[register][alpha]["held_out"][task]["accuracy"], wise[register]["1.0"]["held_out"][task]["accuracy"]
        )

    expected += [
        f"Financial sentiment gains {wise_change('financial', 'sentiment')} points at a = 0.5",
        f"costs reviews {wise_change('reviews', 'sentiment').lstrip('-')} points of sentiment and headlines "
        f"{wise_change('headlines', 'sentiment').lstrip('-')}.",
    ]
    assert [e for e in expected if e not in text] == []


def test_batch_two_changes_come_from_result_files():
    """The derived figures of "Batch 2: the data fix": the shipped recipe's change on the two registers batch 2
    left out (same seed, before and after), its gain over the v1-only recipe, and the v1-only recipe's fall on
    the registers that gained batch 2's sentences, recomputed from results/."""
    text = " ".join(rr.section(README.read_text(encoding="utf-8"), "\n### Batch 2: the data fix\n").split())
    shipped = "embeddings frozen (bottom:0), 5 epochs"
    before, after = rr.loro_runs("loro_bottom0", shipped), rr.loro_runs("loro_batch2", shipped)
    v1_before, v1_after = rr.loro_runs("loro", "v1 only"), rr.loro_runs("loro_batch2", "v1 only")

    def change(register, task):
        return rr.change(rr.register_mean(after, register, task, 0), rr.register_mean(before, register, task, 0))

    rows = [f"{change(h, 'topic')} / {change(h, 'sentiment')}" for h in ("reviews", "financial")]
    gains = [
        rr.change(rr.register_mean(after, h, "topic", 0), rr.register_mean(v1_after, h, "topic"))
        for h in ("reviews", "financial")
    ]
    best = {
        h: max(r["test"]["topic"]["accuracy"] for r in before if r["held_out"] == h) for h in ("reviews", "financial")
    }
    above = [f"{100 * (rr.register_mean(after, h, 'topic', 0) - best[h]):.1f}" for h in ("reviews", "financial")]
    falls = [
        100 * (rr.register_mean(v1_before, h, "topic") - rr.register_mean(v1_after, h, "topic"))
        for h in ("forum", "social", "headlines", "newsbody")
    ]
    expected = [
        f"| reviews | {rr.pair(*(rr.register_mean(before, 'reviews', t, 0) for t in ('topic', 'sentiment')))} | ",
        f"| {rows[0]} |",
        f"| {rows[1]} |",
        f"gains {gains[0]} topic on reviews and {gains[1]} on financial statements",
        f"new score is {above[0]} and {above[1]} points above their best",
        f"its topic falls by {min(falls):.1f} to {max(falls):.1f} points",
    ]
    assert [e for e in expected if e not in text] == []


def test_batch_three_changes_come_from_result_files():
    """The derived figures of "Batch 3": the shipped recipe's change on reviews and financial statements (same
    seed) since batch 2 and since before it, and the counts of the review topic mistakes read one by one."""
    text = " ".join(rr.section(README.read_text(encoding="utf-8"), "\n### Batch 3: experiences and figures\n").split())
    shipped = "embeddings frozen (bottom:0), 5 epochs"
    runs = {name: rr.loro_runs(name, shipped) for name in ("loro_bottom0", "loro_batch2", "loro_batch3")}

    def change(register, task, since):
        return rr.change(*(rr.register_mean(runs[n], register, task, 0) for n in ("loro_batch3", since)))

    for register, name in (("reviews", "reviews"), ("financial", "financial statements")):
        pairs = [rr.pair(*(rr.register_mean(runs[n], register, t, 0) for t in ("topic", "sentiment"))) for n in runs]
        changes = [f"{change(register, 'topic', n)} / {change(register, 'sentiment', n)}" for n in runs][:2][::-1]
        assert f"| {name} | {pairs[1]} | {pairs[2]} | {changes[0]} | {changes[1]} |" in text
    mistakes = rr.read_mistakes()
    categories = Counter(row["category"] for row in mistakes)
    # a convention's note starts with the rule it names: "P3: phone shop service is Business", "T1 (notes 4): ..."
    rules = Counter(row["note"].split(":")[0].split(" (")[0] for row in mistakes if row["category"] == "convention")
    unnamed = sum(row["note"] == "no subject named at all" for row in mistakes if row["category"] == "implicit")
    (reviews,) = [r for r in runs["loro_batch3"] if r["held_out"] == "reviews" and r["seed"] == 0]  # the one read
    n = reviews["test"]["topic"]["n"]
    wrong = round(n * (1 - reviews["test"]["topic"]["accuracy"]))
    assert wrong == sum(categories.values())
    expected = [
        f"({wrong} of {n:,})",
        f"{categories['implicit']} never name what is reviewed",
        f"{unnamed} name nothing at all",
        f"(P3 shops and services {rules['P3']}, T1 fitness or sport {rules['T1']}, the home-town café "
        f"{rules['home-town venue']})",
        f"{categories['convention']} follow a boundary of the guide",
        f"{categories['clear']} name their subject plainly",
        f"{categories['gold_doubtful']} gold labels are doubtful",
    ]
    assert [e for e in expected if e not in text] == []


def test_shipped_models_training_time_is_the_benchmarks():
    """The README's training time for the shipped model is the one bench/shipped_model.py measured."""
    seconds = json.loads(SHIPPED.read_text(encoding="utf-8"))["seconds"]
    section = rr.section(README.read_text(encoding="utf-8"), "\n## The shipped model\n")
    assert f"Training takes {seconds:.0f} s ({seconds / 60:.0f} minutes)" in section


def test_batch_three_order_noise_comes_from_result_files():
    """ "Batch 3": how much the v1-only recipe (same training sentences, reshuffled) moves between the two files."""
    text = " ".join(rr.section(README.read_text(encoding="utf-8"), "\n### Batch 3: experiences and figures\n").split())
    before, after = rr.loro_runs("loro_batch2", "v1 only"), rr.loro_runs("loro_batch3", "v1 only")

    def spread(register, task):
        return max(
            abs(rr.register_mean(after, register, task, s) - rr.register_mean(before, register, task, s))
            for s in range(3)
        )

    means = [
        abs(rr.register_mean(after, h, "topic") - rr.register_mean(before, h, "topic"))
        for h in ("reviews", "financial")
    ]
    expected = [
        f"up to {100 * spread('reviews', 'topic'):.1f} points of topic on reviews and "
        f"{100 * spread('financial', 'topic'):.1f} on financial statements (sentiment: "
        f"{100 * spread('reviews', 'sentiment'):.1f} and {100 * spread('financial', 'sentiment'):.1f}), "
        f"its three-seed means by {100 * max(means):.1f} on both",
    ]
    assert [e for e in expected if e not in text] == []


def test_goal_on_the_corpus_with_batch_three_comes_from_result_files():
    """ "The goal on the corpus with batches 2 and 3": the per-register changes, the gains on the six-register
    means and on the worst registers, and the topic score the goal asks of the worst register."""
    text = " ".join(rr.section(README.read_text(encoding="utf-8"), "\n### Batch 3: experiences and figures\n").split())
    runs = [r for r in rr.result_runs(REPO / "results" / "loro_batch3.json") if r["held_out"] != "crafted"]
    rows = {row["name"].split(",")[0]: row for row in loro_summary(runs)}
    v1, shipped = rows["v1 only"], rows["embeddings frozen (bottom:0)"]

    def gain(key, task):
        return rr.change(shipped[key][task]["accuracy"], v1[key][task]["accuracy"])

    expected = [
        f"{gain('mean', 'topic')} topic and {gain('mean', 'sentiment')} sentiment (goal +5 each)",
        f"the worst register on sentiment, {gain('worst', 'sentiment')}",
        f"reviews, {gain('worst', 'topic')} (goal +8: {v1['worst']['topic']['accuracy'] + 0.08:.3f})",
    ]
    for register, m in shipped["registers"].items():
        change = [
            rr.change(m[t]["accuracy"]["mean"], v1["registers"][register][t]["accuracy"]["mean"])
            for t in ("topic", "sentiment")
        ]
        expected.append(
            f"| {rr.pair(m['topic']['accuracy']['mean'], m['sentiment']['accuracy']['mean'])} | "
            f"{change[0]} / {change[1]} |"
        )
    assert [e for e in expected if e not in text] == []


def test_shipped_models_gains_over_the_first_model_come_from_the_benchmark():
    """ "The shipped model": what the new model gains over the replaced v1-only one, in the same benchmark run."""
    section = " ".join(rr.section(README.read_text(encoding="utf-8"), "\n## The shipped model\n").split())
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8"))
    new, old = shipped["test"], shipped["baseline"]["test"]
    v2, v1 = "data/v2/test.csv", "data/test.csv"
    gains = {
        t: {
            g: new[v2]["by_register"][g][t]["accuracy"] - old[v2]["by_register"][g][t]["accuracy"]
            for g in README_ROWS.values()
        }
        for t in ("topic", "sentiment")
    }
    top = {t: sorted(gains[t], key=gains[t].get, reverse=True) for t in gains}
    names = {register: name for name, register in README_ROWS.items()}
    first, second = top["topic"][:2]
    expected = [
        f"+{100 * (new[v2]['metrics']['sentiment']['accuracy'] - old[v2]['metrics']['sentiment']['accuracy']):.1f} "
        f"points over all of v2 and "
        f"+{100 * (new[v1]['metrics']['sentiment']['accuracy'] - old[v1]['metrics']['sentiment']['accuracy']):.1f} "
        "on v1's own test split",
        f"{names[top['sentiment'][0]]} gain the most sentiment (+{100 * gains['sentiment'][top['sentiment'][0]]:.1f})",
        f"{names[first]} and {names[second]} the most topic (+{100 * gains['topic'][first]:.1f}, "
        f"+{100 * gains['topic'][second]:.1f})",
    ]
    assert [e for e in expected if e not in section] == []
