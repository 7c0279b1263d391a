"""How many labelled sentences of a new register close its transfer gap?

Leave one register out, then give the model back K sentences of it: for each held-out register and each K,
train the shipped recipe (embeddings frozen, every layer above trains, 5 epochs) on every other register's
training split plus K sentences drawn at random from the held-out register's training split, validate on
the other registers' validation split, and test on the held-out register's sentences that no K draws
from (every sentence of it except the largest K's pool, the same test sentences for every K; the draws
are nested, so K=100 is part of K=300). K=0 is plain leave-one-register-out on those sentences.

Results are written after every run, and a rerun skips the runs already in the file.

    python bench/register_shots.py --held-out reviews financial --shots 0 100 300
"""

import argparse
import time

import numpy as np
from common import RESULTS, machine, read_progress, shipped_recipe, v2_splits, write_progress

from mtl.data import Dataset
from mtl.evaluate import evaluate
from mtl.model import new_model
from mtl.train import train

RECIPE = "the shipped recipe (bench/common.py: shipped_recipe)"


def split_register(held: str, pool_size: int, train_data, val_data, test_data, seed: int):
    """(pool of the held-out register's training rows in draw order, its test set: every other row of it)."""
    own_train = train_data.only_groups([held])
    order = np.random.default_rng(seed).permutation(len(own_train))
    pool = own_train.select(order[:pool_size])
    rest = own_train.select(sorted(order[pool_size:]))
    others = [d.only_groups([held]) for d in (val_data, test_data)]
    return pool, Dataset.concat([rest, *others])


def run_one(held, k, seed, train_data, val_data, pool, test) -> dict:
    (others, _), (va, _) = train_data.split_by_group(held), val_data.split_by_group(held)
    tr = Dataset.concat([others, pool.select(range(k))])
    model = new_model(tr.tasks, seed=seed, device="auto")
    t0 = time.perf_counter()
    list(train(model, tr, va, shipped_recipe(seed)))
    seconds = time.perf_counter() - t0
    metrics = evaluate(model, test)
    return {
        "held_out": held,
        "shots": k,
        "seed": seed,
        "train_sentences": len(tr),
        "test_sentences": len(test),
        "seconds": seconds,
        "test": {t: {m: v[m] for m in ("accuracy", "macro_f1", "n")} for t, v in metrics.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--held-out", nargs="+", default=["reviews", "financial"])
    parser.add_argument("--shots", type=int, nargs="+", default=[0, 100, 300])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(RESULTS / "register_shots.json"))
    args = parser.parse_args()
    train_data, val_data, test_data = v2_splits()
    payload = read_progress(args.output, {"machine": machine(), "recipe": RECIPE, "runs": []})
    pool_size = max(args.shots)
    if payload.setdefault("max_shots", pool_size) != pool_size:
        raise SystemExit(f"{args.output} was made with a pool of {payload['max_shots']}; use another --output")
    for held in args.held_out:
        pool, test = split_register(held, pool_size, train_data, val_data, test_data, args.seed)
        for k in args.shots:
            if any(r["held_out"] == held and r["shots"] == k and r["seed"] == args.seed for r in payload["runs"]):
                continue
            run = run_one(held, k, args.seed, train_data, val_data, pool, test)
            print(held, k, {t: round(m["accuracy"], 3) for t, m in run["test"].items()}, f"{run['seconds']:.0f}s")
            payload["runs"].append(run)
            write_progress(args.output, payload)


if __name__ == "__main__":
    main()
