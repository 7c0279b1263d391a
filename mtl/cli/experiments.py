"""Studies of the data and the models: python -m mtl sweep (train many configurations), logme (rank
encoders, pooling modes and layers without training) and datacheck (leakage, templates, label shortcuts)."""

import json
import sys
import time
from pathlib import Path

from ..config import DEFAULT_BASE_MODEL
from ..data import SHIPPED_SPLITS
from .flags import checkpoint_or_shipped


def add_commands(sub) -> None:
    sw = sub.add_parser("sweep", help="train configurations with several seeds; mean and std of test metrics")
    sw.add_argument(
        "--sweeps",
        nargs="+",
        default=["freeze", "layers", "tasks", "mixing"],
        help="freeze | layers | tasks | mixing, or loro alone (leave one register out: data with a register column)",
    )
    sw.add_argument(
        "--only",
        nargs="+",
        metavar="TEXT",
        help="only the configuration named TEXT, or else those whose name contains it",
    )
    sw.add_argument("--seeds", type=int, default=3)
    sw.add_argument("--epochs", type=int, default=3)
    sw.add_argument("--train", default=SHIPPED_SPLITS[0])
    sw.add_argument("--val", default=SHIPPED_SPLITS[1])
    sw.add_argument("--test", default=SHIPPED_SPLITS[2])
    sw.add_argument(
        "--registers",
        nargs="+",
        metavar="NAME",
        help="train, validate and test on these registers only (data with a register column; not with loro)",
    )
    sw.add_argument(
        "--held-out",
        nargs="+",
        metavar="NAME",
        help="loro only: hold out just these registers (each model still trains on all the others), a cheaper screen",
    )
    sw.add_argument(
        "--errors-dir",
        metavar="DIR",
        help="loro only: each model also writes its held-out mistakes here, one CSV per config, seed and register",
    )
    sw.add_argument(
        "--train-sentences",
        type=int,
        default=0,
        metavar="N",
        help="train every run on the same N sentences drawn at random from --train (0 = all of them)",
    )
    sw.add_argument(
        "--resume",
        action="store_true",
        help="reuse the runs already in --output (same --epochs; a sweep with fewer --seeds is extended)",
    )
    sw.add_argument("--output", default="results/sweep.json", help="JSON results; a .md table is written beside it")
    sw.add_argument("--model", default=DEFAULT_BASE_MODEL, help="base model: 'default', a Hugging Face id or a folder")
    sw.set_defaults(run=run_sweep)

    lg = sub.add_parser("logme", help="rank encoders, pooling modes and layers by LogME, without training")
    lg.add_argument("--data", default=SHIPPED_SPLITS[0])
    lg.add_argument("--model", default=DEFAULT_BASE_MODEL, help="base model whose pooling modes and layers are scored")
    lg.add_argument(
        "--checkpoint", help="also score this checkpoint's encoder (default: the shipped model; '' for none)"
    )
    lg.add_argument("--max-sentences", type=int, default=0, help="use only the first N sentences (0 = all)")
    lg.add_argument("--output", metavar="FILE.json", help="also write the scores as JSON")
    lg.add_argument(
        "--sweep", metavar="SWEEP.json", help="compare the layer ranking with this sweep's measured layer curve"
    )
    lg.set_defaults(run=run_logme)

    dc = sub.add_parser("datacheck", help="check labelled files for leakage, template traces and label shortcuts")
    dc.add_argument("files", nargs="*", metavar="FILE", help=f"labelled files (default: {' '.join(SHIPPED_SPLITS)})")
    dc.set_defaults(run=run_datacheck)


def run_sweep(args) -> int:
    from ..config import ModelConfig
    from ..data import Dataset
    from ..errors import ConfigError
    from ..results import summary_of, write_results
    from ..sweep import run_loro, run_sweeps, select, sweep_configs

    loro = "loro" in args.sweeps
    model_config = ModelConfig(base_model=args.model)
    if loro and args.sweeps != ["loro"]:
        raise ConfigError("run --sweeps loro on its own (its results file has another shape)")
    train_data, val_data, test_data = _sweep_data(args, loro)
    command = "python -m mtl sweep " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["sweep"] else "mtl.cli sweep"
    sizes = {"registers": args.registers, "train": len(train_data), "val": len(val_data), "test": len(test_data)}
    meta = {"command": command, "seeds": args.seeds, "epochs": args.epochs, "data": sizes, "machine": machine_info()}
    runs = []
    earlier = _earlier_runs(args, sizes)  # all stay in the file, whichever of them this run reaches
    # seeds are numbered from 0, so an earlier sweep with fewer seeds holds the first runs of this one
    previous = [r for r in earlier if r.get("seed", 0) < args.seeds]
    if earlier:
        print(f"resuming: {len(previous)} earlier runs reused", file=sys.stderr)
    if loro:
        if args.errors_dir:  # a folder that cannot be made fails now, not after the first model's training
            Path(args.errors_dir).mkdir(parents=True, exist_ok=True)
        configs = select(sweep_configs()["loro"], args.only)
        if not configs:
            raise ConfigError(f"--only {' '.join(args.only)!r} matches no leave-one-register-out configuration")
        everything = Dataset.concat([train_data, val_data, test_data])
        runs_iter = run_loro(
            configs,
            args.seeds,
            args.epochs,
            train_data,
            val_data,
            everything,
            model_config=model_config,
            previous=previous,
            held_out=args.held_out,
            errors_dir=args.errors_dir,
        )
    else:
        runs_iter = run_sweeps(
            args.sweeps,
            args.seeds,
            args.epochs,
            train_data,
            val_data,
            test_data,
            model_config=model_config,
            previous=previous,
            only=args.only,
        )
    for kind, payload in runs_iter:
        if kind == "run":
            runs.append(payload)
            # earlier runs not reached yet stay in the file, so an interrupted --resume loses none of them
            kept = runs + not_reached(earlier, runs)
            write_results(args.output, {**meta, "complete": False, "runs": kept, "summary": summary_of(kept)})
            accs = "  ".join(f"{t} {m['accuracy']:.3f}" for t, m in payload["test"].items())
            where = f" held out {payload['held_out']}" if loro else ""
            print(
                f"[{len(runs)}] {payload['sweep']}: {payload['name']} seed {payload['seed']}{where}: {accs} "
                f"({payload['seconds']:.0f}s)",
                file=sys.stderr,
                flush=True,
            )
        else:
            payload["runs"] = payload["runs"] + not_reached(earlier, payload["runs"])
            payload["summary"] = summary_of(payload["runs"])
            json_path, md_path = write_results(args.output, {**meta, "complete": True, **payload})
            print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


def _earlier_runs(args, sizes: dict) -> list[dict]:
    """The runs already in --output that --resume builds on; refuses a file measured on other data or epochs,
    which a resumed sweep would otherwise write over."""
    from ..errors import ConfigError
    from ..results import read_results

    if not args.resume or not Path(args.output).is_file():
        return []
    earlier = read_results(args.output)
    if earlier.get("epochs") != args.epochs or earlier.get("data", sizes) != sizes:
        raise ConfigError(
            f"--resume: {args.output} holds runs of other data or epochs ({earlier.get('data')}, "
            f"{earlier.get('epochs')} epochs; now {sizes}, {args.epochs} epochs). Give another --output, "
            "or leave out --resume to replace the file."
        )
    return earlier.get("runs", [])


def not_reached(previous: list[dict], runs: list[dict]) -> list[dict]:
    """The earlier runs a resumed sweep has not yielded (reused or rerun) yet."""
    from ..results import run_key

    done = {run_key(r) for r in runs}
    return [r for r in previous if run_key(r) not in done]


def _sweep_data(args, loro: bool):
    """(train, val, test) as --train/--val/--test, --registers and --train-sentences select them."""
    from ..data import load_labelled
    from ..errors import ConfigError

    train = load_labelled(args.train)
    val = load_labelled(args.val, label_sets=train.tasks)
    test = load_labelled(args.test, label_sets=train.tasks)
    if args.held_out and not loro:
        raise ConfigError("--held-out is for --sweeps loro; --registers picks the data of other sweeps")
    if args.errors_dir and not loro:
        raise ConfigError("--errors-dir is for --sweeps loro (the held-out mistakes of each model)")
    if args.registers:
        if loro:
            raise ConfigError("--registers picks the data of an ordinary sweep; loro chooses registers itself")
        train, val, test = (d.only_groups(args.registers) for d in (train, val, test))
    if args.train_sentences < 0:
        raise ConfigError(f"--train-sentences must be 0 (all) or more; got {args.train_sentences}")
    if args.train_sentences:
        train = train.sample(args.train_sentences, seed=0)
    return train, val, test


def run_logme(args) -> int:
    from ..checkpoint import load_checkpoint
    from ..data import load_labelled
    from ..errors import DataError
    from ..io import write_atomic
    from ..results import layer_f1, read_results
    from ..transfer import layer_agreement, score_candidates

    t0 = time.perf_counter()
    data = load_labelled(args.data)
    curve = None
    if args.sweep:  # checked before the slow scoring
        curve = read_results(args.sweep)["summary"]
        if not any(k >= 0 for k in layer_f1(curve)):
            raise DataError(f"{args.sweep} has no layer sweep results (python -m mtl sweep --sweeps layers)")
    if args.max_sentences:
        data = data.head(args.max_sentences)
    checkpoint = checkpoint_or_shipped(args.checkpoint)  # '' for none
    result = score_candidates(
        data, load_checkpoint(checkpoint, device="cpu").encoder if checkpoint else None, args.model
    )
    _print_scores(result, list(data.tasks))
    if curve is not None:
        agreement = layer_agreement(result["layers"], curve)
        if not agreement:
            print(f"note: {args.sweep} has fewer than 3 layer settings; no correlation computed", file=sys.stderr)
        result["layer_curve_agreement"] = agreement
        _print_agreement(agreement)
    seconds = time.perf_counter() - t0
    print(f"\nscored in {seconds:.0f} s", file=sys.stderr)
    if args.output:  # JSON stores the layer numbers as strings
        payload = {"data": args.data, "sentences": len(data), **result, "seconds": seconds, "machine": machine_info()}
        write_atomic(Path(args.output), lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=2) + "\n"))
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _print_scores(result: dict, tasks: list[str]) -> None:
    for section in ("encoders", "pooling", "layers"):
        print(f"\n{section} (LogME, higher is better)")
        for name, scores in result[section].items():
            label = f"layer output {name}" if section == "layers" else name
            print(f"  {label:<40} " + "  ".join(f"{t} {scores[t]:+.4f}" for t in tasks))


def _print_agreement(agreement: dict) -> None:
    print("\nLogME of hidden state K against the measured macro-F1 of bottom:K")
    for task, a in agreement.items():
        pairs = ", ".join(f"K={p['K']}: {p['logme']:+.3f}/{p['macro_f1']:.3f}" for p in a["pairs"])
        print(f"  {task}: Spearman {a['spearman']:+.2f}  ({pairs})")


def run_datacheck(args) -> int:
    from ..datacheck import main as datacheck_main

    return datacheck_main(args.files)  # none: the shipped splits


def machine_info() -> dict:
    """The CPU, torch's thread count and the GPU: recorded with every measurement."""
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
