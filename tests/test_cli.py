"""The command line end to end, in-process (fast) on a tiny model, plus the error contract:
one clear line and a non-zero exit, never a traceback."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, layer_runs

from mtl.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def trained_dir(tmp_path, tiny_bert, toy_csv, capsys):
    out = tmp_path / "ck"
    code, _, err = run(
        capsys,
        "train",
        "--data",
        toy_csv,
        "--val",
        toy_csv,
        "--output",
        out,
        "--model",
        tiny_bert,
        "--epochs",
        2,
        "--batch-size",
        8,
        "--quiet",
        "--device",
        "cpu",
    )
    assert code == 0, err
    assert "checkpoint:" in err and (out / "mtl.json").exists()
    return out


def test_train_eval_predict_encode_export(trained_dir, tmp_path, toy_csv, capsys, tiny_bert):
    code, out, _ = run(capsys, "eval", "--checkpoint", trained_dir, "--data", toy_csv, "--json")
    assert code == 0
    metrics = json.loads(out)["metrics"]
    assert set(metrics) == {"topic", "sentiment"} and 0 <= metrics["topic"]["accuracy"] <= 1
    assert len(metrics["topic"]["confusion"]) == 3

    code, out, _ = run(capsys, "eval", "--checkpoint", trained_dir, "--data", toy_csv)
    assert code == 0 and "topic: accuracy" in out and "predicted ->" in out

    code, out, _ = run(capsys, "predict", "--checkpoint", trained_dir, "--text", "the team won")
    assert code == 0 and "topic=" in out and "sentiment=" in out

    pred_csv = tmp_path / "pred.csv"
    code, _, _ = run(capsys, "predict", "--checkpoint", trained_dir, "--input", toy_csv, "--output", pred_csv)
    assert code == 0
    rows = list(csv.DictReader(open(pred_csv, encoding="utf-8")))
    assert len(rows) == 36
    assert {"text", "topic", "topic_score", "sentiment", "topic:sports", "sentiment:neutral"} <= set(rows[0])
    probs = [float(rows[0][f"topic:{lab}"]) for lab in ("business", "film", "sports")]
    assert abs(sum(probs) - 1) < 1e-4 and rows[0]["topic"] in ("business", "film", "sports")

    txt = tmp_path / "in.txt"
    txt.write_text("one sentence\nanother one\n")
    code, _, err = run(capsys, "encode", "--input", txt, "--output", tmp_path / "emb.npy", "--model", tiny_bert)
    assert code == 0, err
    emb = np.load(tmp_path / "emb.npy", allow_pickle=False)
    assert emb.shape == (2, 32)

    code, _, err = run(capsys, "export", "--checkpoint", trained_dir, "--output", tmp_path / "full")
    assert code == 0 and (tmp_path / "full" / "modules.json").exists()


def test_training_twice_with_one_seed_is_repeatable(tmp_path, tiny_bert, toy_csv, capsys):
    results = []
    for name in ("a", "b"):
        run(
            capsys,
            "train",
            "--data",
            toy_csv,
            "--val",
            toy_csv,
            "--output",
            tmp_path / name,
            "--model",
            tiny_bert,
            "--epochs",
            1,
            "--batch-size",
            8,
            "--quiet",
            "--device",
            "cpu",
        )
        results.append(json.loads((tmp_path / name / "mtl.json").read_text())["metrics"])
    assert results[0] == results[1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "missing.csv", "--output", "x"], "missing.csv: no such file"),
        (["train", "--data", "{toy}", "--output", "{tmp}/o", "--epochs", "0"], "epochs must be >= 1"),
        (["train", "--data", "{toy}", "--output", "{tmp}/o", "--lr-heads", "nan"], "lr_heads must be finite"),
        (["train", "--data", "{toy}", "--output", "{tmp}/o", "--freeze", "bottom:9", "--model", "{tiny}"], "bottom:K"),
        (["train", "--data", "{toy}", "--output", "{tmp}/o", "--model", "{tmp}/nope"], "cannot load base model"),
        (["eval", "--checkpoint", "{tmp}/none", "--data", "{toy}"], "no such checkpoint directory"),
        (["predict", "--checkpoint", "{tmp}", "--text", "hi"], "not a checkpoint"),
        (["predict", "--text", "hi", "--input", "{toy}"], "exactly one of --text or --input"),
        (["predict", "--text", "   "], "--text is empty"),
        (["encode", "--input", "{tmp}/none.txt", "--output", "{tmp}/e.npy"], "no such file"),
        (["logme", "--data", "{toy}", "--sweep", "{tmp}/none.json"], "no such results file"),
        (["logme", "--data", "{toy}", "--sweep", "{toy}"], "not a results file"),
    ],
)
def test_errors_are_one_line(argv, message, tmp_path, toy_csv, tiny_bert, capsys):
    argv = [a.format(toy=toy_csv, tmp=tmp_path, tiny=tiny_bert) for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_every_command_has_help():
    for cmd in ("train", "eval", "predict", "encode", "export", "sweep", "logme", "datacheck"):
        r = subprocess.run([sys.executable, "-m", "mtl", cmd, "--help"], cwd=REPO, capture_output=True, text=True)
        assert r.returncode == 0 and "usage: python -m mtl " + cmd in r.stdout


def test_bring_your_own_data_one_task_per_file(tmp_path, tiny_bert, capsys):
    """Real users often have a topic file and a separate sentiment file: train on both at once."""
    from conftest import TOY, write_csv

    topics = write_csv(tmp_path / "topics.csv", [(t, top) for t, top, _ in TOY * 3], header=("text", "topic"))
    moods = tmp_path / "sentiment.jsonl"
    moods.write_text("\n".join(json.dumps({"text": t + " indeed", "sentiment": s}) for t, _, s in TOY * 3))
    out = tmp_path / "own"
    for sampling in ("joint", "alternate"):
        code, _, err = run(
            capsys,
            "train",
            "--data",
            topics,
            moods,
            "--output",
            out / sampling,
            "--model",
            tiny_bert,
            "--epochs",
            2,
            "--batch-size",
            8,
            "--quiet",
            "--task-sampling",
            sampling,
        )
        assert code == 0, err
        meta = json.loads((out / sampling / "mtl.json").read_text())
        assert meta["tasks"] == {
            "topic": ["business", "film", "sports"],
            "sentiment": ["negative", "neutral", "positive"],
        }
    code, out_text, _ = run(capsys, "predict", "--checkpoint", out / "joint", "--text", "the film was great")
    assert code == 0 and "topic=" in out_text and "sentiment=" in out_text


def test_logme_compares_layers_with_a_layer_sweep(tmp_path, tiny_bert, toy_csv, capsys):
    """LogME of each hidden state of the tiny model, set against a sweep file's layer curve."""
    from mtl.results import summarise, write_results

    runs = layer_runs({k: 0.9 - 0.1 * k for k in (0, 1, 2)}, tasks=("topic", "sentiment"))
    sweep, _ = write_results(tmp_path / "sweep.json", {"runs": runs, "summary": summarise(runs)})
    out_json = tmp_path / "logme.json"
    argv = ["logme", "--data", toy_csv, "--model", tiny_bert, "--checkpoint", "", "--sweep", sweep]
    code, out, _ = run(capsys, *argv, "--output", out_json)
    assert code == 0 and "Spearman" in out
    saved = json.loads(out_json.read_text())
    assert saved["seconds"] > 0
    assert set(saved["layers"]) == {"0", "1", "2"}  # embeddings' output and each of the 2 layers
    for task in ("topic", "sentiment"):
        a = saved["layer_curve_agreement"][task]
        assert [p["K"] for p in a["pairs"]] == [0, 1, 2]
        assert [p["logme"] for p in a["pairs"]] == [saved["layers"][str(k)][task] for k in (0, 1, 2)]
        assert -1.0 <= a["spearman"] <= 1.0

    runs = [dict(r, sweep="freeze") for r in runs]
    write_results(tmp_path / "freeze.json", {"runs": runs, "summary": summarise(runs)})
    code, _, err = run(capsys, "logme", "--data", toy_csv, "--sweep", tmp_path / "freeze.json")
    assert code == 2 and "no layer sweep results" in err


def _train_flags() -> dict:
    from mtl.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.choices and "train" in a.choices)
    return {a.option_strings[-1]: a for a in sub.choices["train"]._actions if a.option_strings}


def test_every_config_field_has_a_train_flag_with_its_default_and_help():
    from dataclasses import fields

    from mtl.cli.flags import flag_name
    from mtl.config import ModelConfig, TrainConfig

    flags = _train_flags()
    for cls in (TrainConfig, ModelConfig):
        for f in fields(cls):
            flag = flag_name(f).replace("--", "--no-", 1) if f.default is True else flag_name(f)
            assert flag in flags, f"{cls.__name__}.{f.name} has no flag"
            action = flags[flag]
            assert action.dest == f.name and action.help == f.metadata["help"] and action.help
            assert action.default == f.default and action.choices == f.metadata.get("choices")


# Every training flag as the hand-written parser had it: (default, type, choices); None type = a string
TRAIN_FLAGS = {
    "--freeze": ("none", None, None),
    "--epochs": (4, int, None),
    "--batch-size": (32, int, None),
    "--lr-encoder": (5e-5, float, None),
    "--lr-heads": (2e-3, float, None),
    "--weight-decay": (0.01, float, None),
    "--warmup-ratio": (0.1, float, None),
    "--grad-clip": (1.0, float, None),
    "--task-sampling": ("joint", None, ("joint", "alternate", "proportional", "temperature")),
    "--temperature": (2.0, float, None),
    "--patience": (0, int, None),
    "--seed": (42, int, None),
    "--loss-weighting": ("equal", None, ("equal", "uncertainty")),
    "--no-cache": (True, None, None),
    "--precision": ("fp32", None, ("fp32", "bf16")),
    "--save-dtype": ("float32", None, ("float32", "float16", "bfloat16")),
    "--model": ("default", None, None),
    "--init": (None, None, None),
    "--pooling": ("mean", None, ("mean", "cls", "max")),
    "--normalize": (False, None, None),
    "--max-seq-length": (128, int, None),
    "--dropout": (0.3, float, None),
    "--head-hidden": (0, int, None),
    "--quiet": (False, None, None),
    "--grad-accum": (1, int, None),
    "--mixed-precision": (None, None, ("no", "bf16", "fp16")),
    "--device": ("auto", None, ("auto", "cpu", "cuda", "mps")),
    "--text-column": ("text", None, None),
    "--data": (None, None, None),
    "--val": (None, None, None),
    "--output": (None, None, None),
    # added with the transfer recipes (issue 13)
    "--head-init": ("random", None, ("random", "labels")),
    "--l2sp": (0.0, float, None),
    "--register-sampling": ("proportional", None, ("proportional", "temperature")),
    "--register-temperature": (2.0, float, None),
    "--log-every": (1, int, None),
    "--compile": (False, None, None),
}


def test_train_flags_keep_their_names_defaults_types_and_choices():
    flags = _train_flags()
    assert set(TRAIN_FLAGS) <= set(flags) and set(flags) - set(TRAIN_FLAGS) == {"--help", "--eval-every"}
    for flag, (default, type_, choices) in TRAIN_FLAGS.items():
        a = flags[flag]
        assert (a.default, a.type, tuple(a.choices) if a.choices else None) == (default, type_, choices), flag


def test_datacheck_is_a_subcommand(tmp_path, toy_csv, capsys):
    from mtl import datacheck

    code, out, _ = run(capsys, "datacheck", toy_csv)
    assert code == datacheck.main([str(toy_csv)]) and out == capsys.readouterr().out
    assert "problems found:" in out and f"{toy_csv}: 36 sentences" in out
    r = subprocess.run([sys.executable, "-m", "mtl.datacheck", str(toy_csv)], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == code and r.stdout == out


def test_no_checkpoint_and_no_shipped_model_is_one_line(tmp_path, monkeypatch, capsys):
    from mtl.cli import flags

    monkeypatch.setattr(flags, "SHIPPED_CHECKPOINT", tmp_path / "none")  # as in an installed package
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "predict", "--text", "hi")
    assert code == 2 and err.startswith("error: no --checkpoint given and no shipped model in checkpoints/default")
    assert "pass --checkpoint DIR" in err and len(err.strip().splitlines()) == 1


def test_eval_reports_per_register(trained_dir, tmp_path, toy_csv, capsys):
    import csv

    rows = list(csv.DictReader(open(toy_csv, encoding="utf-8")))
    regs = tmp_path / "registers.csv"
    with open(regs, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "topic", "sentiment", "register"])
        w.writerows([r["text"], r["topic"], r["sentiment"], ("even", "odd")[i % 2]] for i, r in enumerate(rows))
    code, out, _ = run(capsys, "eval", "--checkpoint", trained_dir, "--data", regs, "--json")
    assert code == 0
    report = json.loads(out)
    assert set(report["metrics"]) == {"topic", "sentiment"}  # the register column is not a task
    by_register = report["by_register"]
    assert set(by_register) == {"even", "odd"}
    assert by_register["even"]["topic"]["n"] + by_register["odd"]["topic"]["n"] == report["metrics"]["topic"]["n"]
    # the per-register confusion matrices add up to the whole one
    whole = report["metrics"]["sentiment"]["confusion"]
    parts = [by_register[g]["sentiment"]["confusion"] for g in ("even", "odd")]
    assert [[a + b for a, b in zip(r1, r2)] for r1, r2 in zip(*parts)] == whole
    code, out, _ = run(capsys, "eval", "--checkpoint", trained_dir, "--data", regs)
    assert code == 0 and "per register:" in out and "even" in out and "odd" in out
