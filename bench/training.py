"""Training speed: one epoch on the shipped training split for each freeze preset, with the
frozen-part cache and without it; and full fine-tuning with real batches against the reference
design's batch size 1 (one sentence, one task per step).

Run: python bench/training.py   (writes bench/results/training.json; about 4 minutes on 2 cores)
"""

import time

from common import ROOT, machine, save, table

from mtl.config import TrainConfig
from mtl.data import Dataset, load_labelled
from mtl.model import new_model
from mtl.train import train

PRESETS = ["none", "head.topic", "bottom:2", "bottom:4", "bottom:5", "backbone"]


def one_epoch(data, freeze, cache, batch_size=32, sampling="joint", epochs=1):
    """Seconds per epoch (cache building excluded and reported apart) and the cache event. Epochs that
    take a fraction of a second are averaged over several so timer noise does not decide the ratio."""
    model = new_model(data.tasks, seed=0, device="cpu")
    config = TrainConfig(epochs=epochs, batch_size=batch_size, freeze=freeze, cache=cache, task_sampling=sampling)
    t0, build, event = time.perf_counter(), 0.0, None
    for ev in train(model, data, None, config):
        if ev["type"] == "cache":
            build, event = ev.get("seconds", 0.0), ev
        if ev["type"] == "done":
            return (ev["seconds"] - build) / epochs, build, event
    return (time.perf_counter() - t0) / epochs, build, event


def main():
    data = load_labelled(ROOT / "data" / "train.csv")
    n_layers = 6
    rows, results = [], {}
    full = None  # a full fine-tuning epoch: what N/(N-K) is the ideal speedup over
    for freeze in PRESETS:
        uncached, _, _ = one_epoch(data, freeze, cache=False)
        full = full or uncached
        entry = {"uncached_s": uncached, "uncached_vs_full": full / uncached}
        cached, build, event = one_epoch(data, freeze, cache=True, epochs=1 if freeze != "backbone" else 10)
        if event and event.get("used"):
            entry.update(
                cached_s=cached,
                cache_build_s=build,
                cache_mib=event["bytes"] / 2**20,
                cache_mib_per_1000=event["bytes"] / 2**20 / len(data) * 1000,
                speedup=uncached / cached,
                cached_vs_full=full / cached,
            )
            k = event["layers"]
            if k < n_layers:
                entry["ideal"] = n_layers / (n_layers - k)
                entry["share_of_ideal"] = entry["cached_vs_full"] / entry["ideal"]
        results[freeze] = entry
        e = entry
        rows.append(
            [
                freeze,
                f"{uncached:.1f}",
                f"{e['cached_s']:.2f}" if "cached_s" in e else "-",
                f"{e['cache_build_s']:.1f}" if "cache_build_s" in e else "-",
                f"{e['speedup']:.1f}x" if "speedup" in e else "-",
                f"{e['uncached_vs_full']:.2f}x / {e['cached_vs_full']:.2f}x" if "cached_vs_full" in e else "-",
                f"{e['ideal']:.2f}x ({e['share_of_ideal']:.0%})" if "ideal" in e else "-",
                f"{e['cache_mib_per_1000']:.1f}" if "cache_mib_per_1000" in e else "-",
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
                "cached vs uncached",
                "vs full fine-tune epoch (uncached / cached)",
                "ideal N/(N-K) (share reached, cached)",
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
