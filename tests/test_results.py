"""Sweep results: summaries over seeds, Markdown, the layer curve and the results file."""

import json
import re

import pytest
from conftest import REPO, layer_runs

from mtl.errors import DataError
from mtl.results import config_key, layer_f1, layer_shares, markdown, read_results, summarise, write_results


def test_layer_shares_against_full_fine_tuning():
    runs = layer_runs({0: 0.8, 1: 0.7, 2: 0.6, -1: 0.8})
    lines = layer_shares(summarise(runs), ["topic"])
    assert lines[2:5] == ["| 0 | 100.0% | 100% |", "| 1 | 87.5% | 50% |", "| 2 | 75.0% | 0% |"]
    assert layer_shares(summarise(runs[:3]), ["topic"]) == []  # no full fine-tuning row to compare with


def test_summary_over_seeds_and_markdown():
    seed0, seed1 = layer_runs({0: 0.8, -1: 0.9}), layer_runs({0: 0.6, -1: 0.9})
    runs = seed0 + [dict(r, seed=1, seconds=3.0) for r in seed1]
    for r in runs:
        r["config"] = {**r["config"], "freeze": r["name"]}  # as sweep_configs writes them
    summary = summarise(runs)
    assert [row["seeds"] for row in summary] == [[0, 1], [0, 1]]
    f1 = summary[0]["test"]["topic"]["macro_f1"]
    assert f1 == {"mean": pytest.approx(0.7), "std": pytest.approx(0.1414, abs=1e-4)}
    assert summary[0]["seconds"] == {"mean": 2.0, "std": pytest.approx(1.4142, abs=1e-4)}
    assert layer_f1(summary) == {0: {"topic": pytest.approx(0.7)}, -1: {"topic": pytest.approx(0.9)}}
    md = markdown(summary)
    assert "### layers" in md and "| bottom:0 | 0.500 ± 0.000 | 0.700 ± 0.141 | 1 | 2 s |" in md
    assert md.endswith("4 distinct runs, 0 minutes of training in all.")


def test_config_key_ignores_names_and_table_labels():
    a = {"name": "nothing frozen", "freeze": "none", "layers_frozen": -1}
    assert config_key(a) == config_key({"freeze": "none", "name": "other", "probe_encoder": True})
    assert config_key(a) != config_key({"freeze": "all"})


def test_results_file_round_trip_and_errors(tmp_path):
    runs = layer_runs({0: 0.8, 1: 0.7})
    json_path, md_path = write_results(
        tmp_path / "sub" / "r.json", {"seeds": 1, "runs": runs, "summary": summarise(runs)}
    )
    assert md_path == tmp_path / "sub" / "r.md" and md_path.read_text().startswith("### layers")
    back = read_results(json_path)
    assert back["runs"] == runs and back["summary"] == summarise(runs)  # the summary is recomputed
    with pytest.raises(DataError, match="no such results file"):
        read_results(tmp_path / "none.json")
    (tmp_path / "list.json").write_text(json.dumps({"runs": 3}))
    with pytest.raises(DataError, match="no list of runs"):
        read_results(tmp_path / "list.json")
    (tmp_path / "bad.json").write_text(json.dumps({"runs": [{"sweep": "layers"}]}))
    with pytest.raises(DataError, match="a run in it is malformed"):
        read_results(tmp_path / "bad.json")


def test_readme_sweep_figures_come_from_the_results():
    """Every 'mean ± std' in the README is a cell of results/sweep.md, which the sweep command wrote."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = (REPO / "results" / "sweep.md").read_text(encoding="utf-8")
    figures = re.findall(r"\d\.\d{3} ± \d\.\d{3}", readme)
    assert len(figures) >= 20
    assert [f for f in figures if f not in table] == []


def test_a_hostile_results_file_is_one_data_error(tmp_path):
    from mtl.errors import DataError
    from mtl.results import read_results

    deep = tmp_path / "deep.json"
    deep.write_text('{"runs": ' + "[" * 5000 + "]" * 5000 + "}")
    huge = tmp_path / "huge.json"
    huge.write_text('{"runs": [], "seeds": ' + "9" * 10000 + "}")
    for path in (deep, huge):
        with pytest.raises(DataError, match=f"{path.name}: line 1"):
            read_results(path)
