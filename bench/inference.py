"""Prediction speed: this project (both tasks, one encoder pass) against sentence-transformers'
encode alone on the same backbone, and against two separate single-task models; fp32 and bf16;
against the compute bound; bf16 agreement with fp32; single-sentence latency in process.

"mtl, both tasks" in bf16 is the CLI's path: weights stored in bf16 (set_precision(..., weights=True));
"mtl, bf16 autocast" is the app's (float32 weights, shared with session models, cast per pass).

Run: python bench/inference.py   (writes bench/results/inference.json)
"""

import copy
import time

import torch
from common import ROOT, best_time, machine, matmul_peak, percentiles, realistic_sentences, save, table

from mtl.checkpoint import load_checkpoint
from mtl.data import load_labelled
from mtl.encoder import hf_model
from mtl.model import MultiTaskModel


def flops_per_sentence(model, texts) -> float:
    """Matmul FLOPs of the transformer for the real token counts (2 per multiply-add)."""
    cfg = hf_model(model.encoder).config
    h, inter, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    tok = model.encoder.tokenizer(texts, truncation=True, max_length=model.encoder.max_seq_length)["input_ids"]
    total = sum(layers * (2 * t * (4 * h * h + 2 * h * inter) + 4 * t * t * h) for t in map(len, tok))
    return total / len(texts)


PRECISIONS = ("fp32", "bf16")  # the two compared; "auto" picks one of them


def contenders(model, texts):
    """{name: f(precision) -> a function that predicts every text once}: ours, encode alone, two models."""
    from sentence_transformers import SentenceTransformer

    from mtl.encoder import resolve_base_model

    st = {"fp32": SentenceTransformer(resolve_base_model("default"), device="cpu")}
    st["bf16"] = copy.deepcopy(st["fp32"]).to(torch.bfloat16)
    single = {"fp32": [MultiTaskModel(model.config, {t: labels}, device="cpu") for t, labels in model.tasks.items()]}
    single["bf16"] = [copy.deepcopy(m) for m in single["fp32"]]
    for m in single["bf16"]:
        m.set_precision("bf16", weights=True)
    cast = copy.deepcopy(model)
    cast.set_precision("bf16", weights=True)

    def ours(precision):
        m = cast if precision == "bf16" else model
        m.precision = precision
        return lambda: m.predict_proba(texts, batch_size=64)

    def autocast(precision):
        if precision != "bf16":
            return None
        model.precision = "bf16"
        return lambda: model.predict_proba(texts, batch_size=64)

    def st_encode(precision):  # bf16: weights in bf16 too, as ours
        return lambda: st[precision].encode(texts, batch_size=64, convert_to_numpy=True)

    def two_models(precision):
        def run():
            for m in single[precision]:
                m.predict_proba(texts, batch_size=64)

        return run

    return {
        "mtl, both tasks": ours,
        "mtl, bf16 autocast": autocast,
        "SentenceTransformer.encode": st_encode,
        "two single-task models": two_models,
    }


def throughput(runs: dict, n: int) -> tuple[dict, list]:
    """({precision: {name: sentences/s}}, table rows), every contender timed in the same run."""
    rows, results = [], {}
    for precision in PRECISIONS:
        fns = {name: fn(precision) for name, fn in runs.items()}
        rate = {name: n / best_time(f) for name, f in fns.items() if f is not None}
        results[precision] = rate
        for name, r in rate.items():
            vs_encode, ours_faster = r / rate["SentenceTransformer.encode"], rate["mtl, both tasks"] / r
            rows.append([precision, name, f"{r:.0f}", f"{vs_encode:.2f}x", f"{ours_faster:.2f}x"])
    return results, rows


def bf16_agreement(model) -> dict:
    """Share of the shipped model's test split (v2's, v1's test sentences included) whose top label is the
    same with bf16 weights as in fp32, per task."""
    test = load_labelled(ROOT / "data" / "v2" / "test.csv").texts
    model.precision = "fp32"
    exact = model.predict_proba(test)
    cast = copy.deepcopy(model)
    cast.set_precision("bf16", weights=True)
    fast = cast.predict_proba(test)
    return {t: (exact[t].argmax(-1) == fast[t].argmax(-1)).float().mean().item() for t in exact}


def single_sentence_latency(model) -> dict:
    sentence = "The striker scored twice as the home side won the cup final."
    latency = {}
    for precision in PRECISIONS:
        m = copy.deepcopy(model)
        m.set_precision(precision, weights=True)
        for _ in range(10):
            m.predict([sentence])
        samples = []
        for _ in range(200):
            t0 = time.perf_counter()
            m.predict([sentence])
            samples.append(time.perf_counter() - t0)
        latency[precision] = percentiles(samples)
    return latency


def report(texts, rows, results, fps, peaks, bound, agreement, latency) -> None:
    info = machine()
    print(f"CPU: {info['cpu']}, {info['threads']} threads, torch {info['torch']}; {len(texts)} sentences\n")
    print(table(["precision", "what", "sentences/s", "vs encode alone", "mtl is faster by"], rows))
    print(
        f"\nbackbone FLOPs per sentence: {fps / 1e6:.0f} MFLOP; measured matmul peak: fp32 {peaks['fp32']:.0f}, "
        f"bf16 {peaks['bf16']:.0f} GFLOP/s"
    )
    for p in PRECISIONS:
        r = results[p]["mtl, both tasks"]
        print(f"compute bound {p}: {bound[p]:.0f} sentences/s; mtl reaches {r:.0f} ({r / bound[p]:.0%} of it)")
    print(
        f"bf16 vs fp32 on bf16: {results['bf16']['mtl, both tasks'] / results['fp32']['mtl, both tasks']:.2f}x; "
        f"same labels on the test split: " + ", ".join(f"{t} {a:.2%}" for t, a in agreement.items())
    )
    print(
        "single-sentence latency: "
        + "; ".join(f"{p} median {v['median_ms']:.1f} ms, p95 {v['p95_ms']:.1f} ms" for p, v in latency.items())
    )


def main():
    texts = realistic_sentences(2000)
    model = load_checkpoint(ROOT / "checkpoints" / "default", device="cpu")
    runs = contenders(model, texts)
    runs["mtl, both tasks"]("fp32")()  # warm up
    results, rows = throughput(runs, len(texts))
    fps = flops_per_sentence(model, texts)
    peaks = {p: matmul_peak(p) for p in PRECISIONS}
    bound = {p: peaks[p] * 1e9 / fps for p in peaks}
    agreement = bf16_agreement(model)
    latency = single_sentence_latency(model)
    report(texts, rows, results, fps, peaks, bound, agreement, latency)
    payload = {
        "sentences": len(texts),
        "throughput": results,
        "flops_per_sentence": fps,
        "matmul_gflops": peaks,
        "compute_bound": bound,
        "bf16_agreement": agreement,
        "latency": latency,
    }
    print(f"\nwrote {save('inference', payload).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
