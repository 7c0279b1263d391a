"""Command line: python -m mtl {train,eval,predict,encode,export} ..."""

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .predictions import prediction_rows  # noqa: F401  TODO(integration): mtl/ui.py:462 and tests/test_ui.py:13

DEFAULT_CHECKPOINT = str(Path(__file__).resolve().parent.parent / "checkpoints" / "default")


def _cmd_train(args):
    import threading
    from dataclasses import fields

    from tqdm import tqdm

    from .checkpoint import load_checkpoint
    from .config import ModelConfig, TrainConfig
    from .distributed import load_data, make_accelerator, wants_accelerator
    from .freeze import parameter_counts, parse_freeze
    from .model import new_model
    from .train import train

    # every TrainConfig field has a --flag of the same name; TrainConfig validates the values
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)})
    # under torchrun / accelerate launch (or with --mixed-precision) Accelerate runs the loop; see mtl/distributed.py
    accelerator = None
    if wants_accelerator(args.mixed_precision):
        accelerator = make_accelerator(args.device, args.mixed_precision)
    main_process = accelerator is None or accelerator.is_main_process
    say = print if main_process else (lambda *a, **k: None)  # logs and progress bars: the main process only
    device = accelerator.device if accelerator is not None else args.device
    data = load_data(args.data, text_column=args.text_column)
    val = load_data(args.val, args.text_column, label_sets=data.tasks, split="validation") if args.val else None
    if args.init:
        model = load_checkpoint(args.init, device=device)
    else:
        model_config = ModelConfig(
            base_model=args.model,
            pooling=args.pooling,
            max_seq_length=args.max_seq_length,
            dropout=args.dropout,
            head_hidden=args.head_hidden,
            normalize=args.normalize,
        )
        model = new_model(data.tasks, model_config, device=device, seed=args.seed)
    parse_freeze(config.freeze, model)  # fail on a bad --freeze before printing anything
    if accelerator is not None:
        say(
            f"accelerate: {accelerator.num_processes} process(es), {accelerator.distributed_type.value}, device "
            f"{accelerator.device}, mixed precision {accelerator.mixed_precision}; each batch of {config.batch_size} "
            f"is split across the processes",
            file=sys.stderr,
        )
    say(
        f"data: {len(data)} sentences, tasks: "
        + ", ".join(f"{t} ({len(v)} labels)" for t, v in data.tasks.items())
        + (f"; validation: {len(val)}" if val else "; no validation file"),
        file=sys.stderr,
    )
    stop = threading.Event()
    bar, result = None, None
    extra = {"accelerator": accelerator} if accelerator is not None else {}
    try:
        for ev in train(model, data, val, config, stop=stop, output_dir=args.output, **extra):
            if ev["type"] == "start":
                counts = parameter_counts(model)["total"]
                say(
                    f"frozen: {', '.join(ev['frozen']) or 'nothing'}; trainable parameters: "
                    f"{counts['trainable']:,} of {counts['total']:,}",
                    file=sys.stderr,
                )
                bar = tqdm(total=ev["steps"], unit="step", disable=args.quiet or ev["steps"] == 0 or not main_process)
            elif ev["type"] == "step":
                bar.update(1)
                bar.set_postfix(epoch=ev["epoch"], loss=f"{ev['loss']:.3f}")
            elif ev["type"] == "eval" and main_process:
                line = "  ".join(
                    f"{t}: acc {m['accuracy']:.3f} F1 {m['macro_f1']:.3f}" for t, m in ev["metrics"].items()
                )
                (bar.write if bar else print)(
                    f"epoch {ev['epoch']} step {ev['step']}: {line}" + ("  (best)" if ev["best"] else "")
                )
            elif ev["type"] == "error":
                say(f"error: {ev['message']}", file=sys.stderr)
            elif ev["type"] == "done":
                result = ev
    except KeyboardInterrupt:
        stop.set()
    finally:
        if bar:
            bar.close()
    if accelerator is not None:
        accelerator.end_training()  # leaves the process group
    if result is None:
        return 1
    if result["eval_only"]:
        say(result["message"], file=sys.stderr)
    elif result["checkpoint"] is None and args.output and main_process:
        from .checkpoint import save_checkpoint

        result["checkpoint"] = str(save_checkpoint(model, args.output, config, dtype=config.save_dtype))
    say(
        f"done in {result['seconds']:.1f}s, {result['steps']} steps"
        + (f"; checkpoint: {result['checkpoint']}" if result["checkpoint"] else ""),
        file=sys.stderr,
    )
    return 1 if result.get("failed") else 0


def _cmd_eval(args):
    from .checkpoint import load_checkpoint
    from .data import load_labelled
    from .evaluate import evaluate

    model = load_checkpoint(args.checkpoint, device=args.device)
    model.set_precision(args.precision)
    data = load_labelled(args.data, text_column=args.text_column, label_sets=model.tasks)
    metrics = evaluate(model, data, args.batch_size)
    if args.json:
        print(json.dumps({"checkpoint": args.checkpoint, "data": args.data, "metrics": metrics}, indent=2))
        return 0
    for task, m in metrics.items():
        print(f"{task}: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  loss {m['loss']:.4f}  (n={m['n']})")
        width = max(len(lab) for lab in m["labels"])
        print(" " * (width + 2) + "predicted ->")
        for lab, row in zip(m["labels"], m["confusion"]):
            print(f"  {lab:<{width}} " + " ".join(f"{c:4d}" for c in row))
    return 0


def _cmd_predict(args):
    from .checkpoint import load_checkpoint
    from .data import load_texts
    from .errors import MTLError
    from .predictions import write_predictions_csv

    if (args.text is None) == (args.input is None):
        raise MTLError("give exactly one of --text or --input")
    texts = [args.text] if args.text is not None else load_texts(args.input, args.text_column)
    if not all(t.strip() for t in texts):
        raise MTLError("--text is empty")
    model = load_checkpoint(args.checkpoint, device=args.device)
    model.set_precision(args.precision)
    rows = prediction_rows(model, texts)
    if args.output:
        write_predictions_csv(rows, args.output)
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    else:
        for row in rows:
            labels = "  ".join(f"{t}={row[t]} ({row[f'{t}_score']:.2f})" for t in model.tasks)
            print(f"{labels}  | {row['text'][:80]}")
    return 0


def _cmd_encode(args):
    import numpy as np

    from .data import load_texts
    from .encoder import build_encoder, encode

    texts = load_texts(args.input, args.text_column)
    if args.checkpoint:
        from .checkpoint import load_checkpoint

        encoder = load_checkpoint(args.checkpoint, device=args.device).encoder
    else:
        from .device import resolve_device

        encoder = build_encoder(
            args.model, args.pooling or "mean", args.normalize, args.max_seq_length, resolve_device(args.device)
        )
    vectors = encode(encoder, texts, args.batch_size, pooling=args.pooling)
    from .checkpoint import _write_atomic

    out = Path(args.output)
    if out.suffix != ".npy":
        out = out.with_suffix(out.suffix + ".npy")
    _write_atomic(out, lambda tmp: np.save(open(tmp, "wb"), vectors, allow_pickle=False))
    print(f"wrote {vectors.shape[0]} x {vectors.shape[1]} embeddings to {out}", file=sys.stderr)
    return 0


def _cmd_export(args):
    from .checkpoint import export_standalone, load_checkpoint

    model = load_checkpoint(args.checkpoint, device="cpu")
    out = export_standalone(model, args.output)
    print(f"exported to {out}; the encoder loads with SentenceTransformer({str(out)!r})", file=sys.stderr)
    return 0


def build_parser():
    from .config import DEVICES, POOLING_MODES, PRECISIONS, TASK_SAMPLING, ModelConfig, TrainConfig

    tc, mc = TrainConfig(), ModelConfig()
    p = argparse.ArgumentParser(prog="python -m mtl", description="Multi-task sentence transformer.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a multi-task model on CSV/JSONL files")
    t.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="SOURCE",
        help="training files (text + a column per task), or one Hugging Face dataset: hf:NAME[:SPLIT] or a "
        "save_to_disk folder (DIR or DIR:SPLIT; needs the datasets package)",
    )
    t.add_argument(
        "--val", metavar="SOURCE", help="validation file or dataset (default split: validation); best epoch kept"
    )
    t.add_argument("--output", required=True, metavar="DIR", help="checkpoint directory to write")
    t.add_argument(
        "--freeze",
        default=tc.freeze,
        help="none | all | backbone | head.<task> | bottom:K | comma-separated components",
    )
    t.add_argument("--epochs", type=int, default=tc.epochs)
    t.add_argument("--batch-size", type=int, default=tc.batch_size)
    t.add_argument("--lr-encoder", type=float, default=tc.lr_encoder)
    t.add_argument("--lr-heads", type=float, default=tc.lr_heads)
    t.add_argument("--weight-decay", type=float, default=tc.weight_decay)
    t.add_argument("--warmup-ratio", type=float, default=tc.warmup_ratio)
    t.add_argument("--grad-clip", type=float, default=tc.grad_clip)
    t.add_argument("--task-sampling", choices=TASK_SAMPLING, default=tc.task_sampling)
    t.add_argument("--temperature", type=float, default=tc.temperature, help="T for --task-sampling temperature")
    t.add_argument("--patience", type=int, default=tc.patience, help="stop after N evaluations without improvement")
    t.add_argument("--seed", type=int, default=tc.seed)
    t.add_argument(
        "--loss-weighting",
        choices=("equal", "uncertainty"),
        default=tc.loss_weighting,
        help="uncertainty: learned per-task weights exp(-s_i) (Kendall et al. 2018)",
    )
    t.add_argument("--no-cache", dest="cache", action="store_false", help="recompute frozen layers every epoch")
    t.add_argument("--precision", choices=PRECISIONS, default=tc.precision, help="bf16 autocast where supported")
    t.add_argument(
        "--save-dtype",
        choices=("float32", "float16", "bfloat16"),
        default=tc.save_dtype,
        help="precision of stored encoder weights (float16 halves the checkpoint)",
    )
    t.add_argument("--model", default=mc.base_model, help="base model: 'default', a Hugging Face id or a local path")
    t.add_argument("--init", metavar="DIR", help="continue from this checkpoint instead of a new model")
    t.add_argument("--pooling", choices=POOLING_MODES, default=mc.pooling)
    t.add_argument("--normalize", action="store_true", help="L2-normalise embeddings before the heads")
    t.add_argument("--max-seq-length", type=int, default=mc.max_seq_length)
    t.add_argument("--dropout", type=float, default=mc.dropout)
    t.add_argument("--head-hidden", type=int, default=mc.head_hidden, help="hidden layer size in each head (0 = none)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument(
        "--grad-accum",
        type=int,
        default=tc.grad_accum,
        help="run each process's share of a batch as N micro-batches (same update, less memory)",
    )
    t.add_argument(
        "--mixed-precision",
        choices=("no", "bf16", "fp16"),
        default=None,
        help="mixed precision through Accelerate (fp16 needs a GPU); default: accelerate launch's setting",
    )

    e = sub.add_parser("eval", help="accuracy, macro-F1 and confusion matrix per task")
    e.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    e.add_argument("--data", required=True, metavar="FILE")
    e.add_argument("--json", action="store_true", help="machine-readable output")
    e.add_argument("--batch-size", type=int, default=64)

    pr = sub.add_parser("predict", help="top label and probabilities per task")
    pr.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    pr.add_argument("--text", help="one sentence")
    pr.add_argument("--input", metavar="FILE", help=".txt (one sentence per line), .csv or .jsonl")
    pr.add_argument("--output", metavar="OUT.csv", help="write a CSV instead of printing")

    en = sub.add_parser("encode", help="sentence embeddings to a .npy file")
    en.add_argument("--input", required=True, metavar="FILE")
    en.add_argument("--output", required=True, metavar="OUT.npy")
    en.add_argument("--model", default=mc.base_model, help="base model (ignored with --checkpoint)")
    en.add_argument("--checkpoint", help="use the (fine-tuned) encoder of this checkpoint")
    en.add_argument("--pooling", choices=POOLING_MODES, default=None, help="default: the model's own (mean)")
    en.add_argument("--normalize", action="store_true")
    en.add_argument("--max-seq-length", type=int, default=mc.max_seq_length)
    en.add_argument("--batch-size", type=int, default=64)

    x = sub.add_parser("export", help="a standalone directory loadable by plain sentence-transformers")
    x.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    x.add_argument("--output", required=True, metavar="DIR")

    sw = sub.add_parser("sweep", help="train configurations with several seeds; mean and std of test metrics")
    sw.add_argument(
        "--sweeps", nargs="+", default=["freeze", "layers", "tasks", "mixing"], help="freeze | layers | tasks | mixing"
    )
    sw.add_argument("--seeds", type=int, default=3)
    sw.add_argument("--epochs", type=int, default=3)
    sw.add_argument("--train", default="data/train.csv")
    sw.add_argument("--val", default="data/val.csv")
    sw.add_argument("--test", default="data/test.csv")
    sw.add_argument("--resume", action="store_true", help="reuse the runs already in --output (same seeds/epochs)")
    sw.add_argument("--output", default="results/sweep.json", help="JSON results; a .md table is written beside it")

    lg = sub.add_parser("logme", help="rank encoders, pooling modes and layers by LogME, without training")
    lg.add_argument("--data", default="data/train.csv")
    lg.add_argument("--model", default=mc.base_model, help="base model whose pooling modes and layers are scored")
    lg.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="also score this checkpoint's encoder")
    lg.add_argument("--max-sentences", type=int, default=0, help="use only the first N sentences (0 = all)")
    lg.add_argument("--output", metavar="FILE.json", help="also write the scores as JSON")
    lg.add_argument(
        "--sweep", metavar="SWEEP.json", help="compare the layer ranking with this sweep's measured layer curve"
    )

    for sp in (t, e, pr, en):
        sp.add_argument("--device", choices=DEVICES, default="auto")
    for sp in (t, e, pr, en):
        sp.add_argument("--text-column", default="text")
    for sp in (e, pr):
        sp.add_argument(
            "--precision",
            choices=("auto", *PRECISIONS),
            default="auto",
            help="auto: bf16 where the CPU/GPU supports it natively (same labels, ~1.9x faster)",
        )
    return p


def _cmd_sweep(args):
    from .data import load_labelled
    from .results import read_results, summarise, write_results
    from .sweep import run_sweeps

    train_data = load_labelled(args.train)
    val_data = load_labelled(args.val, label_sets=train_data.tasks)
    test_data = load_labelled(args.test, label_sets=train_data.tasks)
    command = "python -m mtl sweep " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["sweep"] else "mtl.cli sweep"
    meta = {"command": command, "seeds": args.seeds, "epochs": args.epochs, "machine": _machine()}
    runs = []
    previous = []
    if args.resume and Path(args.output).is_file():
        earlier = read_results(args.output)
        if (earlier.get("seeds"), earlier.get("epochs")) == (args.seeds, args.epochs):
            previous = earlier.get("runs", [])
            print(f"resuming: {len(previous)} earlier runs reused", file=sys.stderr)
    runs_iter = run_sweeps(args.sweeps, args.seeds, args.epochs, train_data, val_data, test_data, previous=previous)
    for kind, payload in runs_iter:
        if kind == "run":
            runs.append(payload)
            write_results(args.output, {**meta, "complete": False, "runs": runs, "summary": summarise(runs)})
            accs = "  ".join(f"{t} {m['accuracy']:.3f}" for t, m in payload["test"].items())
            print(
                f"[{len(runs)}] {payload['sweep']}: {payload['name']} seed {payload['seed']}: {accs} "
                f"({payload['seconds']:.0f}s)",
                file=sys.stderr,
                flush=True,
            )
        else:
            json_path, md_path = write_results(args.output, {**meta, "complete": True, **payload})
            print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


def _cmd_logme(args):
    import json as _json

    from .checkpoint import load_checkpoint
    from .data import load_labelled
    from .errors import DataError
    from .transfer import score_candidates

    t0 = time.perf_counter()
    data = load_labelled(args.data)
    curve = None
    if args.sweep:  # checked before the slow scoring
        from .results import layer_f1, read_results

        curve = read_results(args.sweep)["summary"]
        if not any(k >= 0 for k in layer_f1(curve)):
            raise DataError(f"{args.sweep} has no layer sweep results (python -m mtl sweep --sweeps layers)")
    if args.max_sentences:
        data = data.head(args.max_sentences)
    ckpt = load_checkpoint(args.checkpoint, device="cpu").encoder if args.checkpoint else None
    result = score_candidates(data, ckpt, args.model)
    tasks = list(data.tasks)
    for section in ("encoders", "pooling", "layers"):
        print(f"\n{section} (LogME, higher is better)")
        for name, sc in result[section].items():
            label = f"layer output {name}" if section == "layers" else name
            print(f"  {label:<40} " + "  ".join(f"{t} {sc[t]:+.4f}" for t in tasks))
    if curve is not None:
        from .transfer import layer_agreement

        agreement = layer_agreement(result["layers"], curve)
        if not agreement:
            print(f"note: {args.sweep} has fewer than 3 layer settings; no correlation computed", file=sys.stderr)
        result["layer_curve_agreement"] = agreement
        print("\nLogME of hidden state K against the measured macro-F1 of bottom:K")
        for task, a in agreement.items():
            pairs = ", ".join(f"K={p['K']}: {p['logme']:+.3f}/{p['macro_f1']:.3f}" for p in a["pairs"])
            print(f"  {task}: Spearman {a['spearman']:+.2f}  ({pairs})")
    seconds = time.perf_counter() - t0
    print(f"\nscored in {seconds:.0f} s", file=sys.stderr)
    if args.output:  # JSON stores the layer numbers as strings
        from .checkpoint import _write_atomic

        payload = {"data": args.data, "sentences": len(data), **result, "seconds": seconds, "machine": _machine()}
        _write_atomic(Path(args.output), lambda tmp: Path(tmp).write_text(_json.dumps(payload, indent=2) + "\n"))
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _machine() -> dict:
    import platform

    import torch

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


COMMANDS = {
    "train": _cmd_train,
    "eval": _cmd_eval,
    "predict": _cmd_predict,
    "encode": _cmd_encode,
    "export": _cmd_export,
    "sweep": _cmd_sweep,
    "logme": _cmd_logme,
}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from .errors import MTLError

    try:
        return COMMANDS[args.command](args)
    except MTLError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file or folder that cannot be read or written: still one line, no traceback
        what = f"{e.filename}: " if e.filename else ""
        print(f"error: {what}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
