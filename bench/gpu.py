"""Does the accelerator stay busy? Prediction and training speed on one GPU, against
SentenceTransformer.encode and against the previous code paths, all in one run:

    python bench/gpu.py              # on a GPU machine: under 5 minutes; writes bench/results/gpu.json
    python bench/gpu.py --quick      # anywhere (CPU too): a few hundred sentences, checks that it runs

Needs only PyTorch, transformers, sentence-transformers and this checkout (no network, nothing
large carried): the backbone is all-MiniLM-L6-v2's shape (bench/minilm_shape: its config and
tokenizer, 720 KB) with random weights, built on the spot; weights do not change speed.
Sentences are the project's own (data/*.csv, data/v2/*.csv: headlines, posts, reviews, reports),
repeated to --sentences (10,000). Every timing is the best of --repeats (2) after a warm-up run, with
torch.cuda.synchronize().

Prediction (sentences/s, tokenisation included, both tasks): this project's predict_proba (fp32
weights; bf16 weights), the previous path (token counts first, then each batch tokenized again, bf16
as autocast over fp32 weights, probabilities copied to the host per batch and task), bf16 autocast
(the app's path: its weights are shared in float32), and SentenceTransformer.encode alone (fp32;
bf16 weights). Training (full fine-tuning, steps of a real run): ms per step and (sentence, task)
examples per second at batch 32 and 256, fp32 and --precision bf16, losses read every step or
every 50, torch.compile'd or not, and the previous path (tokenized every step, losses read every
step, AdamW not fused).
"""

import argparse
import copy
import csv
import shutil
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT, best_time, machine, save, table

from mtl import train as train_mod
from mtl.batches import tokenize
from mtl.cache import BatchForward
from mtl.config import ModelConfig, TrainConfig
from mtl.data import load_labelled
from mtl.model import MultiTaskModel

SHAPE = ROOT / "bench" / "minilm_shape"
TASKS = {
    "topic": ["World", "Politics", "Business", "Sports", "Science & Technology", "Entertainment", "Health", "Travel"],
    "sentiment": ["positive", "negative", "neutral"],
}


def random_backbone(out: Path) -> Path:
    """A sentence-transformers folder with MiniLM's config and tokenizer and random weights."""
    from transformers import AutoConfig, AutoModel

    shutil.copytree(SHAPE, out, dirs_exist_ok=True)
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.from_pretrained(SHAPE)).save_pretrained(out, safe_serialization=True)
    return out


def attention(base: str) -> str:
    """The attention implementation transformers picked for the backbone (sdpa: PyTorch's fused kernel)."""
    from mtl.encoder import build_encoder, hf_model

    return hf_model(build_encoder(base)).config._attn_implementation


def sentences(n: int) -> list[str]:
    """The project's sentences, every register, repeated (in a fixed shuffle) to n."""
    texts = []
    for path in sorted((ROOT / "data").glob("*.csv")) + sorted((ROOT / "data" / "v2").glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            texts += [row["text"] for row in csv.DictReader(f) if row.get("text")]
    texts = sorted(set(texts))
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(0)).tolist()
    return [texts[order[i % len(texts)]] for i in range(n)]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats: int) -> float:
    def run():
        fn()
        sync(device)

    run()  # warm up (kernels, allocator)
    return best_time(run, repeats)


@torch.inference_mode()
def previous_predict(model, texts, batch_size, bf16: bool):
    """predict_proba as it was: token counts first, each batch tokenized again, autocast, per-task copies."""
    model.eval()
    tok = model.encoder.tokenizer
    lengths = [len(i) for i in tok(texts, truncation=True, max_length=model.encoder.max_seq_length)["input_ids"]]
    order = torch.argsort(-torch.tensor(lengths), stable=True)
    out = {t: torch.zeros(len(texts), len(v)) for t, v in model.tasks.items()}
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        features = tokenize(model.encoder, [texts[i] for i in idx], model.device)
        with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(features)
        for t, lg in logits.items():
            out[t][idx] = lg.float().softmax(-1).cpu()
    return out


def prediction(base: str, texts, device, batches, repeats) -> list[dict]:
    """sentences/s for every path, batch size and precision."""
    from sentence_transformers import SentenceTransformer

    fp32 = MultiTaskModel(ModelConfig(base_model=base), TASKS, device)
    bf16 = copy.deepcopy(fp32)
    bf16.set_precision("bf16", weights=True)
    st32 = SentenceTransformer(base, device=str(device))
    st16 = copy.deepcopy(st32).to(torch.bfloat16)
    rows = []
    for bs in batches:
        paths = {
            ("fp32", "mtl predict_proba"): (fp32.predict_proba, texts, bs),
            ("fp32", "previous predict_proba"): (previous_predict, fp32, texts, bs, False),
            ("fp32", "SentenceTransformer.encode"): (encode, st32, texts, bs),
            ("bf16", "mtl predict_proba"): (bf16.predict_proba, texts, bs),
            ("bf16", "mtl, bf16 autocast (app)"): (autocast, fp32, texts, bs),
            ("bf16", "previous predict_proba"): (previous_predict, fp32, texts, bs, True),
            ("bf16", "SentenceTransformer.encode"): (encode, st16, texts, bs),
        }
        for (precision, what), (fn, *call) in paths.items():
            seconds = timed(lambda fn=fn, call=call: fn(*call), device, repeats)
            rows.append({"batch": bs, "precision": precision, "what": what, "sentences_per_s": len(texts) / seconds})
            print(f"  predict batch {bs:>3} {precision} {what:<30} {rows[-1]['sentences_per_s']:>9,.0f}/s", flush=True)
        fp32.precision = "fp32"
    return rows


def encode(st, texts, bs):
    return st.encode(texts, batch_size=bs)


def autocast(model, texts, bs):
    model.precision = "bf16"
    try:
        return model.predict_proba(texts, bs)
    finally:
        model.precision = "fp32"


class EveryStepTokens:
    """The previous training path: each batch tokenized at its step (for the comparison only)."""

    def __init__(self, encoder, texts):
        self.encoder, self.texts = encoder, texts

    def batch(self, idx, device):
        return tokenize(self.encoder, [self.texts[i] for i in idx], device)


def training(base: str, data, device, batch: int, steps: int, variant: dict) -> dict:
    """ms per step of a full fine-tuning run: `steps` steps timed after 5 untimed ones (allocator,
    kernels). The loop asks its stop switch before every step; the clock is read there, after a
    synchronize, at the 6th step and at the end only (so no extra wait per step)."""
    model = MultiTaskModel(ModelConfig(base_model=base), data.tasks, device)
    precision, log_every = variant.get("precision", "fp32"), variant.get("log_every", 1)
    config = TrainConfig(
        epochs=1000,
        batch_size=batch,
        precision=precision,
        log_every=log_every,
        cache=False,
        compile=variant.get("compile", False),
    )
    saved = (BatchForward.__init__, torch.optim.AdamW)
    if variant.get("previous"):
        BatchForward.__init__, torch.optim.AdamW = _every_step_init, _unfused
    clock = StepClock(device, warmup=5, steps=steps)
    try:
        for _ in train_mod.train(model, data.head(batch * (steps + 6)), None, config, stop=clock):
            pass
    finally:
        BatchForward.__init__, torch.optim.AdamW = saved
    ms = 1000 * clock.seconds / steps
    return {"batch": batch, **variant, "ms_per_step": ms, "examples_per_s": batch * len(data.tasks) * 1000 / ms}


class StepClock:
    """A stop switch that times `steps` training steps after `warmup` ones, then stops the run."""

    def __init__(self, device, warmup: int, steps: int):
        self.device, self.warmup, self.steps, self.calls, self.t0, self.seconds = device, warmup, steps, 0, 0.0, 0.0

    def is_set(self) -> bool:
        self.calls += 1
        if self.calls in (self.warmup + 1, self.warmup + self.steps + 1):
            sync(self.device)
            now = time.perf_counter()
            self.t0, self.seconds = (now, 0.0) if self.calls == self.warmup + 1 else (self.t0, now - self.t0)
        return self.calls > self.warmup + self.steps


def _every_step_init(self, model, texts, cache):
    torch.nn.Module.__init__(self)
    self.model, self.cache, self.tokens = model, cache, EveryStepTokens(model.encoder, texts)


_ADAMW = torch.optim.AdamW


def _unfused(params, **kw):
    return _ADAMW(params, **{**kw, "fused": False})


TRAIN_VARIANTS = [
    {"precision": "fp32", "log_every": 1, "previous": True},
    {"precision": "fp32", "log_every": 1},
    {"precision": "fp32", "log_every": 50},
    {"precision": "bf16", "log_every": 50},
    {"precision": "bf16", "log_every": 50, "compile": True},  # its compile time falls in the untimed steps
]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sentences", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--steps", type=int, default=60, help="timed training steps per variant")
    p.add_argument(
        "--quick", action="store_true", help="400 sentences, 1 repeat, 8 steps: does it run? (~12 min on 2 cores)"
    )
    args = p.parse_args()
    if args.quick:
        args.sentences, args.repeats, args.steps = 400, 1, 8
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        base = str(random_backbone(Path(tmp) / "minilm-random"))
        attn = attention(base)
        texts = sentences(args.sentences)
        print(f"{device}: {len(texts):,} sentences; backbone {base} (random weights)", flush=True)
        batches = (64, 256) if args.quick else (64, 256, 512)
        predict_rows = prediction(base, texts, device, batches, args.repeats)
        data = load_labelled(ROOT / "data" / "v2" / "train.csv", label_sets=TASKS)
        train_rows = []
        for batch in (32, 256):
            for variant in TRAIN_VARIANTS:
                train_rows.append(training(base, data, device, batch, args.steps, variant))
                r = train_rows[-1]
                print(f"  train batch {batch:>3} {variant}: {r['ms_per_step']:.1f} ms/step", flush=True)
    report(predict_rows, train_rows)
    payload = {
        "command": "python bench/gpu.py" + (" --quick" if args.quick else ""),
        "device": str(device),
        "sentences": len(texts),
        "attention": attn,
        "prediction": predict_rows,
        "training": train_rows,
        "seconds": round(time.time() - t0),
    }
    name = "gpu" if device.type == "cuda" and not args.quick else f"gpu-{device.type}{'-quick' * args.quick}"
    print(f"wrote {save(name, payload).relative_to(ROOT)}")


def report(predict_rows, train_rows) -> None:
    print(f"\n{machine()}\n")
    rate = {(r["batch"], r["precision"], r["what"]): r["sentences_per_s"] for r in predict_rows}
    rows = []
    for (bs, precision, what), r in rate.items():
        encode = rate[(bs, precision, "SentenceTransformer.encode")]
        rows.append([bs, precision, what, f"{r:,.0f}", f"{r / encode:.2f}x"])
    print(table(["batch", "precision", "what", "sentences/s", "vs encode"], rows))
    rows = [
        [r["batch"], r["precision"], r["log_every"], "previous" if r.get("previous") else "now"]
        + ["compiled" if r.get("compile") else ""]
        + [f"{r['ms_per_step']:.1f}", f"{r['examples_per_s']:,.0f}"]
        for r in train_rows
    ]
    print()
    print(table(["batch", "precision", "losses read every", "path", "compile", "ms/step", "(sentence, task)/s"], rows))


if __name__ == "__main__":
    main()
