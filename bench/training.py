"""Training speed: one epoch on the shipped training split for each freeze preset, with the
frozen-part cache and without it; and full fine-tuning with real batches against the reference
design's batch size 1 (one sentence, one task per step).

Run: python bench/training.py   (writes bench/results/training.json; about 10 minutes on 2 cores)
"""

import time

from common import ROOT, machine, save, table

from mtl.config import TrainConfig
from mtl.data import Dataset, load_labelled
from mtl.model import new_model
from mtl.train import train

PRESETS = ["none", "head.topic", "bottom:2", "bottom:4", "bottom:5", "backbone"]


def one_epoch(data, freeze, cache, batch_size=32, sampling="joint"):
    """Seconds for the epoch (cache building excluded and reported apart) and the cache event."""
    model = new_model(data.tasks, seed=0, device="cpu")
    config = TrainConfig(epochs=1, batch_size=batch_size, freeze=freeze, cache=cache, task_sampling=sampling)
    t0, build, event = time.perf_counter(), 0.0, None
    for ev in train(model, data, None, config):
        if ev["type"] == "cache":
            build, event = ev.get("seconds", 0.0), ev
        if ev["type"] == "done":
            return ev["seconds"] - build, build, event
    return time.perf_counter() - t0, build, event


def main():
    data = load_labelled(ROOT / "data" / "train.csv")
    n_layers = 6
    rows, results = [], {}
    for freeze in PRESETS:
        uncached, _, _ = one_epoch(data, freeze, cache=False)
        entry = {"uncached_s": uncached}
        cached, build, event = one_epoch(data, freeze, cache=True)
        if event and event.get("used"):
            entry.update(
                cached_s=cached,
                cache_build_s=build,
                cache_mib=event["bytes"] / 2**20,
                cache_mib_per_1000=event["bytes"] / 2**20 / len(data) * 1000,
                speedup=uncached / cached,
            )
            k = event["layers"]
            ideal = n_layers / (n_layers - k) if k < n_layers else None
            entry["ideal"] = ideal
        results[freeze] = entry
        ideal = entry.get("ideal")
        rows.append(
            [
                freeze,
                f"{uncached:.1f}",
                f"{entry['cached_s']:.2f}" if "cached_s" in entry else "-",
                f"{entry['cache_build_s']:.1f}" if "cache_build_s" in entry else "-",
                f"{entry['speedup']:.1f}x" if "speedup" in entry else "-",
                f"{ideal:.2f}x ({entry['speedup'] / ideal:.0%} of it)" if ideal else "-",
                f"{entry['cache_mib_per_1000']:.1f}" if "cache_mib_per_1000" in entry else "-",
            ]
        )
        print(rows[-1], flush=True)

    # Reference design: batch size 1, tasks alternating, every sentence trained once per task.
    subset = Dataset(data.texts[:96], {t: v[:96] for t, v in data.labels.items()}, data.tasks)
    ref_s, _, _ = one_epoch(subset, "none", cache=False, batch_size=1, sampling="alternate")
    ours_s, _, _ = one_epoch(subset, "none", cache=False, batch_size=32, sampling="joint")
    pairs = 2 * len(subset)  # (sentence, task) examples trained per epoch
    results["reference_batch1"] = {
        "examples_per_s": pairs / ref_s,
        "ours_examples_per_s": pairs / ours_s,
        "speedup": ref_s / ours_s,
    }

    info = machine()
    print(f"\nCPU: {info['cpu']}, {info['threads']} threads; {len(data)} training sentences, batch size 32\n")
    print(
        table(
            [
                "freeze",
                "epoch uncached (s)",
                "epoch cached (s)",
                "cache build (s)",
                "speedup",
                "ideal N/(N-K)",
                "cache MiB per 1,000 sentences",
            ],
            rows,
        )
    )
    r = results["reference_batch1"]
    print(
        f"\nfull fine-tuning, (sentence, task) examples per second: batch 32 joint {r['ours_examples_per_s']:.1f} vs "
        f"reference design (batch 1, alternating) {r['examples_per_s']:.1f}: {r['speedup']:.1f}x"
    )
    path = save("training", {"sentences": len(data), "epochs": results})
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
