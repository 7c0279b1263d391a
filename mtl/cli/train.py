"""python -m mtl train: the training loop (mtl/train.py) with a progress bar, on one process or, under
torchrun / accelerate launch (or with --mixed-precision), through Accelerate (mtl/distributed.py)."""

import sys

from ..config import MIXED_PRECISION, ModelConfig, TrainConfig
from ..data import TEXT_COLUMN
from .flags import add_config_flags, config_from_args


def add_commands(sub) -> None:
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
    t.add_argument("--init", metavar="DIR", help="continue from this checkpoint instead of a new model")
    add_config_flags(t, TrainConfig)
    add_config_flags(t, ModelConfig)
    t.add_argument("--text-column", default=TEXT_COLUMN)
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument(
        "--mixed-precision",
        choices=MIXED_PRECISION,
        default=None,
        help="mixed precision through Accelerate (fp16 needs a GPU); default: accelerate launch's setting",
    )
    t.set_defaults(run=run_train)


def run_train(args) -> int:
    from ..distributed import make_accelerator, wants_accelerator
    from ..freeze import parse_freeze
    from ..hf_data import load_data

    config = config_from_args(TrainConfig, args)
    # under torchrun / accelerate launch (or with --mixed-precision) Accelerate runs the loop
    accelerator = (
        make_accelerator(args.device, args.mixed_precision) if wants_accelerator(args.mixed_precision) else None
    )
    main_process = accelerator is None or accelerator.is_main_process
    say = print if main_process else (lambda *a, **k: None)  # logs and progress bars: the main process only
    data = load_data(args.data, text_column=args.text_column)
    val = load_data(args.val, args.text_column, label_sets=data.tasks, split="validation") if args.val else None
    model = _start_model(args, data, accelerator.device if accelerator is not None else args.device)
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
    result = _train_with_progress(model, data, val, config, args, accelerator, say)
    if accelerator is not None:
        accelerator.end_training()  # leaves the process group
    if result is None:
        return 1
    if result["eval_only"]:
        say(result["message"], file=sys.stderr)
    say(
        f"done in {result['seconds']:.1f}s, {result['steps']} steps"
        + (f"; checkpoint: {result['checkpoint']}" if result["checkpoint"] else ""),
        file=sys.stderr,
    )
    return 1 if result.get("failed") else 0


def _start_model(args, data, device):
    """The checkpoint of --init, or a new model of the ModelConfig flags with a head per task of the data."""
    from ..checkpoint import load_checkpoint
    from ..model import new_model

    if args.init:
        return load_checkpoint(args.init, device=device)
    return new_model(data.tasks, config_from_args(ModelConfig, args), device=device, seed=args.seed)


def _train_with_progress(model, data, val, config, args, accelerator, say) -> dict | None:
    """Run the loop, showing its events (a progress bar, one line per evaluation); the "done" event, or None
    when the loop ended without one (interrupted)."""
    import threading

    from tqdm import tqdm

    from ..freeze import parameter_counts
    from ..train import train

    main_process = accelerator is None or accelerator.is_main_process
    stop = threading.Event()
    bar, result = None, None
    runner = None  # the loop's own single-process runner
    if accelerator is not None:
        from ..distributed import AccelerateRunner

        runner = AccelerateRunner(accelerator, config.grad_accum)
    try:
        for ev in train(model, data, val, config, stop=stop, output_dir=args.output, runner=runner):
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
    return result
