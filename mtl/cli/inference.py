"""Commands that use a model: python -m mtl eval, predict, encode, export."""

import json
import sys
from pathlib import Path

from ..config import DEFAULT_BASE_MODEL, INFERENCE_PRECISIONS, POOLING_MODES, ModelConfig, TrainConfig
from ..data import GROUP_COLUMN, TEXT_COLUMN
from .flags import add_config_flags, checkpoint_or_shipped

CHECKPOINT_HELP = "checkpoint directory (default: the shipped model, checkpoints/default)"


def add_commands(sub) -> None:
    e = sub.add_parser("eval", help="accuracy, macro-F1 and confusion matrix per task")
    e.add_argument("--checkpoint", help=CHECKPOINT_HELP)
    e.add_argument("--data", required=True, metavar="FILE")
    e.add_argument("--json", action="store_true", help="machine-readable output")
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument(
        "--group-column",
        default=GROUP_COLUMN,
        help="column naming each text's register (not a task); when present, metrics are also reported per register",
    )
    e.set_defaults(run=run_eval)

    pr = sub.add_parser("predict", help="top label and probabilities per task")
    pr.add_argument("--checkpoint", help=CHECKPOINT_HELP)
    pr.add_argument("--text", help="one sentence")
    pr.add_argument("--input", metavar="FILE", help=".txt (one sentence per line), .csv or .jsonl")
    pr.add_argument("--output", metavar="OUT.csv", help="write a CSV instead of printing")
    pr.set_defaults(run=run_predict)

    en = sub.add_parser("encode", help="sentence embeddings to a .npy file")
    en.add_argument("--input", required=True, metavar="FILE")
    en.add_argument("--output", required=True, metavar="OUT.npy")
    en.add_argument("--model", default=DEFAULT_BASE_MODEL, help="base model (ignored with --checkpoint)")
    en.add_argument("--checkpoint", help="use the (fine-tuned) encoder of this checkpoint")
    en.add_argument("--pooling", choices=POOLING_MODES, default=None, help="default: the model's own (mean)")
    add_config_flags(en, ModelConfig, ["normalize", "max_seq_length"])
    en.add_argument("--batch-size", type=int, default=64)
    en.set_defaults(run=run_encode)

    x = sub.add_parser("export", help="a standalone directory loadable by plain sentence-transformers")
    x.add_argument("--checkpoint", help=CHECKPOINT_HELP)
    x.add_argument("--output", required=True, metavar="DIR")
    x.set_defaults(run=run_export)

    for sp in (e, pr, en):
        add_config_flags(sp, TrainConfig, ["device"])
        sp.add_argument("--text-column", default=TEXT_COLUMN)
    for sp in (e, pr):
        sp.add_argument(
            "--precision",
            choices=INFERENCE_PRECISIONS,
            default="auto",
            help="auto: bf16 where the CPU/GPU supports it natively (same labels, ~1.9x faster)",
        )


def run_eval(args) -> int:
    from ..checkpoint import load_checkpoint
    from ..data import load_labelled
    from ..evaluate import evaluate, evaluate_by_group

    args.checkpoint = checkpoint_or_shipped(args.checkpoint)
    model = load_checkpoint(args.checkpoint, device=args.device)
    model.set_precision(args.precision, weights=True)  # this model only predicts
    data = load_labelled(
        args.data, text_column=args.text_column, label_sets=model.tasks, group_column=args.group_column or None
    )
    probs = model.predict_proba(data.texts, args.batch_size)
    metrics = evaluate(model, data, probs=probs)
    by_group = evaluate_by_group(model, data, probs=probs) if data.groups else {}
    if args.json:
        payload = {"checkpoint": args.checkpoint, "data": args.data, "metrics": metrics}
        if by_group:
            payload["by_register"] = by_group
        print(json.dumps(payload, indent=2))
        return 0
    for task, m in metrics.items():
        print(f"{task}: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  loss {m['loss']:.4f}  (n={m['n']})")
        width = max(len(lab) for lab in m["labels"])
        print(" " * (width + 2) + "predicted ->")
        for lab, row in zip(m["labels"], m["confusion"]):
            print(f"  {lab:<{width}} " + " ".join(f"{c:4d}" for c in row))
    if by_group:
        print(group_table(by_group, list(metrics)))
    return 0


def group_table(by_group: dict, tasks: list[str]) -> str:
    """Accuracy and macro-F1 per register and task, one register a line."""
    width = max(len(g) for g in by_group)
    head = f"{'register':<{width}}      n  " + "  ".join(f"{t + ' acc':>14} {t + ' F1':>13}" for t in tasks)
    lines = ["", "per register:", head]
    for group, metrics in by_group.items():
        n = max(m["n"] for m in metrics.values())
        cells = "  ".join(
            f"{metrics[t]['accuracy']:>14.4f} {metrics[t]['macro_f1']:>13.4f}" if t in metrics else f"{'-':>28}"
            for t in tasks
        )
        lines.append(f"{group:<{width}} {n:>6}  {cells}")
    return "\n".join(lines)


def run_predict(args) -> int:
    from ..checkpoint import load_checkpoint
    from ..data import load_texts
    from ..errors import MTLError
    from ..predictions import prediction_rows, write_predictions_csv

    if (args.text is None) == (args.input is None):
        raise MTLError("give exactly one of --text or --input")
    texts = [args.text] if args.text is not None else load_texts(args.input, args.text_column)
    if not all(t.strip() for t in texts):
        raise MTLError("--text is empty")
    model = load_checkpoint(checkpoint_or_shipped(args.checkpoint), device=args.device)
    model.set_precision(args.precision, weights=True)  # this model only predicts
    rows = prediction_rows(model, texts)
    if args.output:
        write_predictions_csv(rows, args.output)
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    else:
        for row in rows:
            labels = "  ".join(f"{t}={row[t]} ({row[f'{t}_score']:.2f})" for t in model.tasks)
            print(f"{labels}  | {row['text'][:80]}")
    return 0


def run_encode(args) -> int:
    import numpy as np

    from ..data import load_texts
    from ..encoder import build_encoder, encode
    from ..io import write_atomic

    texts = load_texts(args.input, args.text_column)
    if args.checkpoint:
        from ..checkpoint import load_checkpoint

        encoder = load_checkpoint(args.checkpoint, device=args.device).encoder
    else:
        from ..device import resolve_device

        encoder = build_encoder(
            args.model, args.pooling or "mean", args.normalize, args.max_seq_length, resolve_device(args.device)
        )
    vectors = encode(encoder, texts, args.batch_size, pooling=args.pooling)
    out = Path(args.output)
    if out.suffix != ".npy":
        out = out.with_suffix(out.suffix + ".npy")
    write_atomic(out, lambda tmp: np.save(open(tmp, "wb"), vectors, allow_pickle=False))
    print(f"wrote {vectors.shape[0]} x {vectors.shape[1]} embeddings to {out}", file=sys.stderr)
    return 0


def run_export(args) -> int:
    from ..checkpoint import export_standalone, load_checkpoint

    model = load_checkpoint(checkpoint_or_shipped(args.checkpoint), device="cpu")
    out = export_standalone(model, args.output)
    print(f"exported to {out}; the encoder loads with SentenceTransformer({str(out)!r})", file=sys.stderr)
    return 0
