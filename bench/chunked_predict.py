"""Another visitor's one-sentence prediction while a 1,000-row file is predicted, before and after the
file went in chunks, measured in one run on the same model and machine.

    python bench/chunked_predict.py [--rows 1000] [--every 0.25] [--rounds 1]

- "whole file (before)": the file predicted under the model's lock in one go, as predict_file did
  before (prediction_rows inside ctx.model_lock): a visitor waits for the whole file.
- "in chunks (after)": predict_file as it is now: FILE_CHUNK sentences per forward pass, waiting
  visitors first between two chunks (mtl_app.predict.ForwardPasses).

In each phase one visitor predicts a sentence (predict_text, as the /predict handler does) every
--every seconds from the moment the file starts until it is done; the "idle" phase is the visitor
alone. Reported: the file's seconds, the visitor's latency (median, max, count). With --rounds > 1
the two file phases alternate in order. Writes bench/results/chunked_predict.json.
"""

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, realistic_sentences, save, table

SENTENCE = "The striker scored twice as the home side won the cup final."


def visitor(ctx, done: threading.Event, every: float, count: int | None = None) -> list[float]:
    """Seconds per one-sentence prediction, one every `every` s, until `done` (or `count` of them)."""
    from mtl_app import predict

    out = []
    while not done.is_set() and (count is None or len(out) < count):
        t0 = time.perf_counter()
        predict.predict_text(ctx, SENTENCE, "default", None)
        out.append(time.perf_counter() - t0)
        time.sleep(every)
    return out


def whole_file(ctx, path: Path, out_dir: Path) -> None:
    """The file as predict_file predicted it before: every sentence in one go, under the model's lock."""
    from mtl.data import load_texts
    from mtl.predictions import prediction_rows

    texts = load_texts(path, max_rows=ctx.limits.batch_rows, max_bytes=ctx.limits.upload_bytes)
    with ctx.model_lock(ctx.default_model):
        prediction_rows(ctx.default_model, texts)


def in_chunks(ctx, path: Path, out_dir: Path) -> None:
    from mtl_app import predict

    predict.predict_file(ctx, path, "default", None, out_dir=out_dir)


def phase(ctx, run_file, path: Path, out_dir: Path, every: float) -> dict:
    """Run the file on one thread and the visitor on this one; the visitor starts with the file."""
    done, started = threading.Event(), threading.Event()
    seconds = {}

    def file_thread():
        started.set()
        t0 = time.perf_counter()
        run_file(ctx, path, out_dir)
        seconds["file"] = time.perf_counter() - t0
        done.set()

    thread = threading.Thread(target=file_thread)
    thread.start()
    started.wait()
    time.sleep(0.3)  # the file's first forward pass is under way
    latencies = visitor(ctx, done, every)
    thread.join()
    return {"file_s": seconds["file"], **summary(latencies)}


def summary(latencies: list[float]) -> dict:
    return {
        "visitor_requests": len(latencies),
        "visitor_median_s": statistics.median(latencies),
        "visitor_max_s": max(latencies),
        "visitor_s": latencies,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1000, help="sentences in the file (the local limit is 1,000)")
    p.add_argument("--every", type=float, default=0.25, help="seconds between the visitor's predictions")
    p.add_argument("--rounds", type=int, default=1, help="times to run both file phases, alternating their order")
    args = p.parse_args()

    from mtl_app import predict
    from mtl_app.context import DEFAULT_CHECKPOINT, AppContext

    ctx = AppContext(DEFAULT_CHECKPOINT, saved_dir=tempfile.mkdtemp(prefix="mtl-bench-"), device="cpu")
    tmp = Path(tempfile.mkdtemp(prefix="mtl-chunked-"))
    path = tmp / "file.txt"
    path.write_text("\n".join(s.replace("\n", " ") for s in realistic_sentences(args.rows)) + "\n")
    predict.predict_text(ctx, SENTENCE, "default", None)  # warm up
    phases = {"idle": [summary(visitor(ctx, threading.Event(), args.every, count=20))]}
    runs = [("whole file (before)", whole_file), ("in chunks (after)", in_chunks)]
    for r in range(args.rounds):
        for name, run_file in runs if r % 2 == 0 else runs[::-1]:
            phases.setdefault(name, []).append(phase(ctx, run_file, path, tmp, args.every))
            print(name, {k: v for k, v in phases[name][-1].items() if k != "visitor_s"}, flush=True)
    rows = []
    for name, results in phases.items():
        file_s = [r["file_s"] for r in results if "file_s" in r]
        median = statistics.median(s for r in results for s in r["visitor_s"])
        worst = max(r["visitor_max_s"] for r in results)
        n = sum(r["visitor_requests"] for r in results)
        rows.append([name, f"{statistics.median(file_s):.1f}" if file_s else "-", n, f"{median:.2f}", f"{worst:.2f}"])
    print(table(["phase", "file s", "visitor requests", "visitor median s", "visitor max s"], rows))
    out = save(
        "chunked_predict",
        {
            "command": "python bench/chunked_predict.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items()),
            "rows": args.rows,
            "file_chunk": predict.FILE_CHUNK,
            "every_s": args.every,
            "phases": phases,
            "table": rows,
        },
    )
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
