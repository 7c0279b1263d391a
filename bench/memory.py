"""Memory across repeated training runs in one app process, through the app's own functions
(mtl_app/, as the Gradio handlers call them), read from /proc/self/status (VmRSS now, VmHWM the
peak so far). Linux only; run by hand:

    python bench/memory.py [--runs 10] [--sentences 256] [--public] [--collect]

1. Predictions: the app context on the shipped model serves 600 predictions (one at a time, in
   batches of 16 as Gradio's request batching hands them over, and Embeddings requests).
2. One session trains `--runs` times in a row (what one visitor pressing Start again and again does):
   each new model replaces the last, so memory must stay flat.
3. `--runs` sessions train once each (new visitors): every session keeps its model, but at most
   Limits.session_models of them (mtl_app/context.py); older ones are released, so memory levels off.

Each run is short: the app's default freeze (embeddings + layers 0-3 frozen), 1 epoch, `--sentences`
sentences, starting alternately from the pretrained encoder and from the session's model. Nothing calls
the garbage collector: a released model must be freed the moment its last reference goes
(mtl_app.memory.freed_when_dropped), as it is in the app. With --collect, gc.collect() runs after every
run (how this was measured before the models were freed deterministically), for comparison.
Writes bench/results/memory.json (memory-public.json with --public; -collect added with --collect).
"""

import argparse
import collections
import gc
import sys
import tempfile
import time

from common import save, table

from mtl.shared_weights import shared_bytes
from mtl_app.context import DEFAULT_CHECKPOINT, DEFAULT_MODEL, SESSION_MODEL, AppContext, Session
from mtl_app.embeddings import EMBED_EXAMPLE, embed_sentences
from mtl_app.predict import PREDICT_EXAMPLES, predict_many, predict_text
from mtl_app.train_run import run_training

FROZEN = ["embeddings", "layer.0", "layer.1", "layer.2", "layer.3"]


def status_mb() -> dict:
    """{"rss": MB now, "peak": highest RSS so far (VmHWM)} from /proc/self/status."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024  # kB -> MiB
    return {"rss": round(values["VmRSS"], 1), "peak": round(values["VmHWM"], 1)}


def own_mib(ctx, model) -> float:
    """MiB of weights `model` holds itself: all its parameters less those shared with the other held
    models (the shipped model's, other sessions'; mtl/shared_weights.py)."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    others = [m for m in ctx.held_models() if m is not model]
    return round((total - shared_bytes(model, *others)) / 2**20, 1)


def train_once(ctx, session, k: int, sentences: int) -> str:
    start = "active" if k % 2 and session.model is not None else "pretrained"
    choice = SESSION_MODEL if start == "active" else DEFAULT_MODEL
    updates = run_training(ctx, session, choice, start, FROZEN, 1, 32, 5e-5, 5e-3, "joint", sentences)
    (last,) = collections.deque(updates, maxlen=1)  # run it through, keeping only the final update
    return last["status"].split("\n")[0][:60]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--sentences", type=int, default=256)
    p.add_argument("--public", action="store_true", help="the public-link limits (4 session models, not 8)")
    p.add_argument("--collect", action="store_true", help="gc.collect() after every run (the old measurement)")
    args = p.parse_args()
    collect = gc.collect if args.collect else (lambda: None)
    t0 = time.time()
    start = status_mb()
    saved = tempfile.mkdtemp(prefix="mtl-mem-")
    ctx = AppContext(DEFAULT_CHECKPOINT, saved_dir=saved, device="cpu", public=args.public)
    ctx.training_data()
    loaded = status_mb()
    print(f"python + libraries: {start}; app context loaded: {loaded}")

    texts = [t for t, _, _ in PREDICT_EXAMPLES]
    for i in range(200):
        predict_text(ctx, texts[i % len(texts)], "default", None)
    for i in range(25):
        batch = [(texts[(i + j) % len(texts)], "default", None) for j in range(16)]
        assert all(isinstance(r, dict) for r in predict_many(ctx, batch))
    for _ in range(5):
        embed_sentences(ctx, EMBED_EXAMPLE, "mean", "default", None)
    collect()
    serving = status_mb()
    print(f"after 600 predictions and 5 embedding requests: {serving}")

    one_session, rows_one = Session(), []
    for k in range(args.runs):
        status = train_once(ctx, one_session, k, args.sentences)
        collect()
        m = status_mb()
        rows_one.append({"run": k + 1, **m, "status": status})
        print(f"one session, run {k + 1}: {m}  {status}", flush=True)
    one_session = None
    collect()

    sessions, rows_many = [], []
    for k in range(args.runs):
        s = Session()
        sessions.append(s)  # every visitor's session stays alive, as Gradio holds it
        status = train_once(ctx, s, 0, args.sentences)
        collect()
        m = status_mb()
        held = sum(x.model is not None for x in sessions)
        own = own_mib(ctx, s.model) if s.model is not None else None
        rows_many.append({"run": k + 1, **m, "models_held": held, "own_weights_mib": own, "status": status})
        print(f"new session {k + 1}: {m}, session models held: {held}, its own weights {own} MiB", flush=True)

    print()
    print(table(["run", "RSS MiB", "peak MiB (VmHWM)"], [[r["run"], r["rss"], r["peak"]] for r in rows_one]))
    print()
    print(
        table(
            ["session", "RSS MiB", "peak MiB (VmHWM)", "models held", "its own weights MiB"],
            [[r["run"], r["rss"], r["peak"], r["models_held"], r["own_weights_mib"]] for r in rows_many],
        )
    )
    full = max(
        (r for r in rows_many if r["models_held"] == ctx.limits.session_models), key=lambda r: r["run"], default=None
    )
    per_session = (full["rss"] - rows_many[0]["rss"]) / (full["models_held"] - 1) if full else None
    if per_session is not None:
        print(f"RSS per session model held, from the first to {full['models_held']}: {per_session:.1f} MiB")
    path = save(
        ("memory-public" if args.public else "memory") + ("-collect" if args.collect else ""),
        {
            "command": "python bench/memory.py " + " ".join(sys.argv[1:]),
            "gc_collect_after_each_run": args.collect,
            "gc_collections": [s["collections"] for s in gc.get_stats()],
            "runs": args.runs,
            "sentences": args.sentences,
            "freeze": FROZEN,
            "session_models_cap": ctx.limits.session_models,
            "start_mib": start,
            "context_loaded_mib": loaded,
            "serving_mib": serving,
            "one_session": rows_one,
            "new_sessions": rows_many,
            "rss_per_session_model_mib": per_session,
            "seconds": round(time.time() - t0),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
