"""Weight-space ensembling (WiSE-FT, Wortsman et al. 2022) as a transfer recipe, screened on held-out registers.

For each held-out register: train the shipped recipe (embeddings frozen, every layer above trains, 5 epochs)
on all the other registers, starting the heads as the zero-shot classifier of their label names
(`--head-init labels`), so the starting model is itself a classifier. Then score, on every sentence of the
held-out register and on the trained registers' validation split, the models between start and end:

- `whole`: every weight (encoder and heads) at (1 - a) * start + a * fine-tuned: WiSE-FT as published;
- `encoder`: only the encoder interpolated, the fine-tuned heads kept.

a = 1 is the fine-tuned model, a = 0 the zero-shot start. One training per register gives every a. The
results are written after each register, so an interrupted screen keeps what it finished (rerun skips them).

    python bench/wise_ft.py --held-out reviews financial headlines --seed 0 --errors-dir bench/results/errors
"""

import argparse
import dataclasses
import time
from pathlib import Path

import torch
from common import RESULTS, machine, read_progress, shipped_recipe, v2_splits, write_progress

from mtl.data import Dataset
from mtl.evaluate import evaluate
from mtl.model import new_model
from mtl.predictions import write_mistakes_csv
from mtl.train import train

RECIPE = "the shipped recipe (bench/common.py: shipped_recipe), from the zero-shot head start"


def snapshot(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def mix(start: dict, end: dict, alpha: float) -> dict:
    """(1 - alpha) * start + alpha * end for floating-point tensors; others (integer buffers) from `end`."""
    return {k: torch.lerp(start[k], v, alpha) if v.is_floating_point() else v for k, v in end.items()}


def scores(model, data) -> dict:
    metrics = evaluate(model, data)
    return {t: {k: m[k] for k in ("accuracy", "macro_f1", "n", "confusion", "labels")} for t, m in metrics.items()}


def screen_register(held, seed, alphas, train_data, val_data, everything, errors_dir, epochs=None, limit=0) -> dict:
    (tr, _), (va, _), (_, test) = (d.split_by_group(held) for d in (train_data, val_data, everything))
    if limit:  # a smoke test of the script, not a measurement
        tr, va, test = tr.sample(limit, seed=0), va.sample(limit, seed=0), test.sample(limit, seed=0)
    model = new_model(tr.tasks, seed=seed, device="auto")
    model.init_heads_from_labels()  # the zero-shot start, taken before training so it can be interpolated to
    start = snapshot(model)
    t0 = time.perf_counter()
    config = shipped_recipe(seed)  # its heads start at random: here they are already the zero-shot start
    if epochs:
        config = dataclasses.replace(config, epochs=epochs)
    list(train(model, tr, va, config))
    seconds = time.perf_counter() - t0
    end = snapshot(model)
    if errors_dir:
        write_mistakes_csv(model, test, errors_dir / f"wise_ft_errors_{held}_seed{seed}.csv")
    result = {"held_out": held, "seed": seed, "seconds": seconds, "whole": {}, "encoder": {}}
    for alpha in alphas:
        weights = mix(start, end, alpha)
        model.load_state_dict(weights)
        result["whole"][str(alpha)] = {"held_out": scores(model, test), "val": scores(model, va)}
        model.load_state_dict({**weights, **{k: v for k, v in end.items() if k.startswith("heads.")}})
        result["encoder"][str(alpha)] = {"held_out": scores(model, test), "val": scores(model, va)}
        print(held, alpha, _line(result["whole"][str(alpha)]), "| encoder only", _line(result["encoder"][str(alpha)]))
    return result


def _line(r: dict) -> str:
    return "  ".join(f"{part} {t} {m['accuracy']:.3f}" for part in ("held_out", "val") for t, m in r[part].items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--held-out", nargs="+", default=["reviews", "financial"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 0.9, 1.0])
    parser.add_argument("--output", default=str(RESULTS / "wise_ft.json"))
    parser.add_argument("--epochs", type=int, help="instead of the recipe's (a smoke test)")
    parser.add_argument("--limit", type=int, default=0, help="use N sentences of each split (a smoke test)")
    parser.add_argument("--errors-dir", help="also write the fine-tuned model's mistakes per register here (CSV)")
    args = parser.parse_args()
    train_data, val_data, test_data = v2_splits()
    everything = Dataset.concat([train_data, val_data, test_data])
    payload = read_progress(args.output, {"machine": machine(), "recipe": RECIPE, "alphas": args.alphas, "runs": []})
    errors_dir = None
    if args.errors_dir:
        errors_dir = Path(args.errors_dir)
        errors_dir.mkdir(parents=True, exist_ok=True)
    for held in args.held_out:
        if any(r["held_out"] == held and r["seed"] == args.seed for r in payload["runs"]):
            print(f"{held} seed {args.seed}: already in {args.output}")
            continue
        run = screen_register(
            held, args.seed, args.alphas, train_data, val_data, everything, errors_dir, args.epochs, args.limit
        )
        payload["runs"].append(run)
        write_progress(args.output, payload)


if __name__ == "__main__":
    main()
