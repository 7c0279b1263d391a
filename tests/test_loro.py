"""Leave one register out: the transfer sweep, its summary and its CLI (tiny model)."""

import csv
import json

import pytest
from conftest import TOY, write_csv
from test_sweep import tiny_sweeps  # noqa: F401  (fixture)

from mtl import sweep
from mtl.cli import main
from mtl.data import Dataset, load_labelled
from mtl.errors import DataError
from mtl.predictions import file_slug
from mtl.results import loro_markdown, loro_summary, read_results

REGISTERS = ("posts", "news", "crafted")


@pytest.fixture
def registered(tmp_path):
    rows = [(f"{t} {'so ' * i}".strip(), top, sen, REGISTERS[i % 3]) for i in range(6) for t, top, sen in TOY]
    path = write_csv(tmp_path / "reg.csv", rows, header=("text", "topic", "sentiment", "register"))
    return path, load_labelled(path)


def test_every_register_is_held_out_once_and_tested_on_all_its_rows(tiny_sweeps, registered):  # noqa: F811
    _, data = registered
    cfg = {"name": "bottom:1", "freeze": "bottom:1", "epochs": 1}
    events = list(sweep.run_loro([cfg], 1, 1, data, data, data))
    runs = [p for k, p in events if k == "run"]
    assert sorted(r["held_out"] for r in runs) == sorted(REGISTERS)
    for r in runs:
        assert r["held_out"] not in r["trained_on"]
        assert r["test"]["topic"]["n"] == data.groups.count(r["held_out"])
        assert r["train_sentences"] == len(data) - data.groups.count(r["held_out"])


def test_a_recipe_trained_on_named_registers_is_tested_on_the_others(tiny_sweeps, registered):  # noqa: F811
    _, data = registered
    cfg = {"name": "crafted only", "freeze": "backbone", "epochs": 1, "train_groups": ["crafted"]}
    runs = [p for k, p in sweep.run_loro([cfg], 2, 1, data, data, data) if k == "run"]
    assert sorted((r["seed"], r["held_out"]) for r in runs) == [(0, "news"), (0, "posts"), (1, "news"), (1, "posts")]
    summary = loro_summary(runs)
    row = summary[0]
    assert set(row["registers"]) == {"news", "posts"} and row["seeds"] == [0, 1]
    worst = row["worst"]["topic"]
    assert worst["accuracy"] == min(m["topic"]["accuracy"]["mean"] for m in row["registers"].values())
    assert "Leave one register out" in loro_markdown(summary) and "crafted only" in loro_markdown(summary)


def test_loro_needs_registers(tiny_sweeps, toy_data):  # noqa: F811
    with pytest.raises(DataError, match="register column"):
        list(sweep.run_loro([{"name": "x"}], 1, 1, toy_data, toy_data, toy_data))


def test_dataset_concat_keeps_groups(registered, toy_data):
    _, data = registered
    both = Dataset.concat([data, toy_data])
    assert len(both) == len(data) + len(toy_data)
    assert both.groups[: len(data)] == data.groups and both.groups[len(data) :] == [None] * len(toy_data)


def test_cli_sweep_loro_writes_json_and_markdown_and_resumes(tiny_sweeps, registered, tmp_path, capsys):  # noqa: F811
    path, _ = registered
    out = tmp_path / "loro.json"
    argv = ["sweep", "--sweeps", "loro", "--only", "encoder frozen", "--seeds", "1", "--epochs", "1"]
    argv += ["--train", str(path), "--val", str(path), "--test", str(path), "--output", str(out)]
    assert main(argv) == 0
    payload = json.loads(out.read_text())
    assert payload["complete"] and {r["held_out"] for r in payload["runs"]} == set(REGISTERS)
    assert "Leave one register out" in out.with_suffix(".md").read_text()
    assert read_results(out)["summary"][0]["name"] == "encoder frozen, heads 30 epochs"
    capsys.readouterr()
    assert main(argv + ["--resume"]) == 0
    assert "3 earlier runs reused" in capsys.readouterr().err
    # asking for more seeds reuses seed 0 and trains only seed 1
    more_seeds = argv.copy()
    more_seeds[argv.index("--seeds") + 1] = "2"
    assert main(more_seeds + ["--resume"]) == 0
    assert "3 earlier runs reused" in capsys.readouterr().err
    payload = json.loads(out.read_text())
    assert payload["seeds"] == 2 and sorted(r["seed"] for r in payload["runs"]) == [0, 0, 0, 1, 1, 1]
    assert main(["sweep", "--sweeps", "loro", "freeze", "--train", str(path)]) == 2


def test_a_half_done_seed_is_left_out_of_the_summary():
    def run(seed, held, acc):
        return {
            "name": "x",
            "config": {},
            "seed": seed,
            "held_out": held,
            "seconds": 1.0,
            "trained_on": [],
            "test": {"topic": {"accuracy": acc, "macro_f1": acc, "n": 10}},
        }

    runs = [run(0, "a", 0.5), run(0, "b", 0.7), run(1, "a", 0.9)]  # seed 1 stopped before holding out b
    row = loro_summary(runs)[0]
    assert row["seeds"] == [0] and row["registers"]["a"]["topic"]["accuracy"]["mean"] == 0.5
    assert row["mean"]["topic"]["accuracy"] == pytest.approx(0.6)


def test_only_a_whole_name_selects_that_configuration_alone(tmp_path, capsys):
    from mtl.cli import main
    from mtl.sweep import select, sweep_configs

    loro = sweep_configs()["loro"]
    assert [c["name"] for c in select(loro, ["bottom:2, 5 epochs"])] == ["bottom:2, 5 epochs"]  # a prefix of 5 more
    shipped = "embeddings frozen (bottom:0), 5 epochs"  # the shipped recipe, a prefix of its zero-shot variant
    assert [c["name"] for c in select(loro, [shipped])] == [shipped]
    several = [c["name"] for c in select(loro, ["zero-shot"])]
    assert len(several) == 3 and all("zero-shot" in n for n in several)  # any other text: every match
    # a whole name of another sweep ("bottom:2" in layers) is still a substring here
    assert select(loro, ["bottom:2"]) == [c for c in loro if "bottom:2" in c["name"]] and select(loro, None) == loro
    out = tmp_path / "kept.json"
    out.write_text("{}")
    argv = ["sweep", "--sweeps", "loro", "--only", "no such recipe", "--output", str(out)]
    assert main(argv) == 2 and "matches no" in capsys.readouterr().err
    assert out.read_text() == "{}"  # nothing written over the results file


def test_cli_sweep_on_some_registers_and_fewer_sentences(tiny_sweeps, registered, tmp_path):  # noqa: F811
    path, data = registered
    out = tmp_path / "some.json"
    argv = ["sweep", "--sweeps", "freeze", "--only", "encoder frozen (heads train)", "--seeds", "1", "--epochs", "1"]
    argv += ["--train", str(path), "--val", str(path), "--test", str(path), "--output", str(out)]
    assert main(argv + ["--registers", "posts", "news", "--train-sentences", "5"]) == 0
    sizes = json.loads(out.read_text())["data"]
    in_two = data.groups.count("posts") + data.groups.count("news")
    assert sizes == {"registers": ["posts", "news"], "train": 5, "val": in_two, "test": in_two}
    assert main(argv + ["--registers", "nowhere"]) == 2  # a register the data lacks: its own message
    assert main(argv + ["--train-sentences", "-1"]) == 2
    assert main(["sweep", "--sweeps", "loro", "--registers", "posts", "--train", str(path)]) == 2


def test_loro_can_hold_out_only_some_registers(tiny_sweeps, registered, tmp_path):  # noqa: F811
    path, data = registered
    out = tmp_path / "two.json"
    argv = ["sweep", "--sweeps", "loro", "--only", "encoder frozen", "--seeds", "1", "--epochs", "1"]
    argv += ["--train", str(path), "--val", str(path), "--test", str(path), "--output", str(out)]
    assert main(argv + ["--held-out", "posts", "news"]) == 0
    runs = json.loads(out.read_text())["runs"]
    assert sorted(r["held_out"] for r in runs) == ["news", "posts"]
    for r in runs:  # each model still trains on every other register
        assert sorted(r["trained_on"]) == sorted(set(REGISTERS) - {r["held_out"]})
    assert main(argv + ["--held-out", "nowhere"]) == 2
    assert main(argv[:2] + ["freeze"] + argv[3:] + ["--held-out", "posts"]) == 2


def test_an_interrupted_resume_keeps_the_earlier_runs_it_had_not_reached(
    tiny_sweeps,  # noqa: F811
    registered,
    tmp_path,
    monkeypatch,
):
    """--resume rewrites the file after every run: the earlier runs it has not come to yet must stay in
    it, or stopping a resumed sweep would throw away finished work."""
    path, _ = registered
    out = tmp_path / "loro.json"
    argv = ["sweep", "--sweeps", "loro", "--only", "encoder frozen", "--seeds", "2", "--epochs", "1"]
    argv += ["--train", str(path), "--val", str(path), "--test", str(path), "--output", str(out)]
    assert main(argv + ["--held-out", "news"]) == 0  # seeds 0 and 1 of one register
    earlier = json.loads(out.read_text())["runs"]
    real, calls = sweep._loro_runs, []

    def stopped_on_second(*args, **kwargs):
        calls.append(args[4])  # the registers it holds out
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while training its second new run
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep, "_loro_runs", stopped_on_second)
    assert main(argv + ["--resume"]) != 0  # "interrupted"
    payload = json.loads(out.read_text())
    assert not payload["complete"]
    kept = {(r["seed"], r["held_out"]) for r in payload["runs"]}
    assert {(r["seed"], r["held_out"]) for r in earlier} == {(0, "news"), (1, "news")} <= kept
    assert kept == {(0, "news"), (1, "news"), (0, calls[0][0])}


def test_a_resume_that_runs_only_some_recipes_or_registers_keeps_every_earlier_run(
    tiny_sweeps,  # noqa: F811
    registered,
    tmp_path,
):
    """A finished --resume rewrites the file with what it ran and reused, and every earlier run it was not
    asked about (another recipe, another register, a later seed): finishing must not throw work away."""
    path, _ = registered
    out = tmp_path / "loro.json"
    data = ["--train", str(path), "--val", str(path), "--test", str(path), "--output", str(out), "--epochs", "1"]
    loro = ["sweep", "--sweeps", "loro", "--resume", *data]
    assert main([*loro, "--only", "encoder frozen", "--seeds", "2", "--held-out", "posts"]) == 0
    assert main([*loro, "--only", "heads only 30 epochs, zero-shot", "--seeds", "1", "--held-out", "news"]) == 0
    runs = json.loads(out.read_text())["runs"]
    assert sorted((r["name"][:7], r["seed"], r["held_out"]) for r in runs) == [
        ("encoder", 0, "posts"),
        ("encoder", 1, "posts"),
        ("heads o", 0, "news"),
    ]
    assert main([*loro, "--only", "encoder frozen", "--seeds", "1"]) == 0  # every register, seed 0 only
    runs = json.loads(out.read_text())["runs"]
    assert sorted((r["name"][:7], r["seed"], r["held_out"]) for r in runs) == sorted(
        [("encoder", 0, h) for h in REGISTERS] + [("encoder", 1, "posts"), ("heads o", 0, "news")]
    )


def test_resume_refuses_a_file_measured_on_other_data(tiny_sweeps, registered, tmp_path, capsys):  # noqa: F811
    path, _ = registered
    out = tmp_path / "loro.json"
    argv = ["sweep", "--sweeps", "loro", "--only", "encoder frozen", "--seeds", "1", "--held-out", "news"]
    argv += ["--train", str(path), "--val", str(path), "--test", str(path), "--output", str(out), "--epochs", "1"]
    assert main(argv) == 0
    before = out.read_text()
    capsys.readouterr()
    assert main([*argv, "--resume", "--epochs", "2"]) == 2
    assert "holds runs of other data or epochs" in capsys.readouterr().err
    assert out.read_text() == before  # nothing replaced


def test_errors_dir_writes_each_models_held_out_mistakes_under_safe_names(tiny_sweeps, tmp_path):  # noqa: F811
    rows = [
        (f"{t} {'so ' * i}".strip(), top, sen, ("posts", "../escape")[i % 2]) for i in range(4) for t, top, sen in TOY
    ]
    data = load_labelled(write_csv(tmp_path / "r.csv", rows, header=("text", "topic", "sentiment", "register")))
    out = tmp_path / "errors"
    cfg = {"name": "embeddings frozen (bottom:0), 1 epoch", "freeze": "bottom:0", "epochs": 1}
    runs = [p for k, p in sweep.run_loro([cfg], 1, 1, data, data, data, errors_dir=out) if k == "run"]
    files = sorted(p.name for p in out.iterdir())
    config = file_slug(cfg["name"])
    assert config.startswith("embeddings-frozen-bottom-0-1-epoch-") and file_slug("posts") == "posts"
    assert files == sorted(f"{config}_seed0_{r}.csv" for r in ("posts", file_slug("../escape")))
    assert file_slug("../escape").startswith("escape-") and file_slug("Posts") != file_slug("posts!")
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".csv"] == ["r.csv"]  # nothing written outside
    for run in runs:
        written = list(csv.DictReader(open(out / f"{config}_seed0_{file_slug(run['held_out'])}.csv")))
        # every row is a mistake on some task, and their number matches the accuracies of the run
        assert all(any(r[f"{t}_gold"] != r[f"{t}_pred"] for t in ("topic", "sentiment")) for r in written)
        n = run["test"]["topic"]["n"]
        wrong = {t: sum(r[f"{t}_gold"] != r[f"{t}_pred"] for r in written) for t in ("topic", "sentiment")}
        for t in wrong:
            assert wrong[t] == round(n * (1 - run["test"][t]["accuracy"]))
        assert len(written) >= max(wrong.values())


def test_errors_dir_is_for_loro_only(tiny_sweeps, registered, tmp_path, capsys):  # noqa: F811
    path, _ = registered
    argv = ["sweep", "--sweeps", "freeze", "--seeds", "1", "--epochs", "1", "--train", str(path), "--val", str(path)]
    argv += ["--test", str(path), "--output", str(tmp_path / "s.json"), "--errors-dir", str(tmp_path / "e")]
    assert main(argv) == 2
    assert "--errors-dir is for --sweeps loro" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()
