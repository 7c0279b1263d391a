"""Load test, run by hand: many concurrent gradio_client clients against the app on this machine,
compared with a no-op Gradio endpoint measured in the same run, with and without a training run, and
under attack.

    python bench/load_test.py [--clients 20] [--requests 15] [--rounds 2] [--public]

Everything is on 127.0.0.1 and bounded: a fixed number of requests per client, a deadline per phase;
the servers are subprocesses on free ports, stopped at the end. Saved models go to a temporary
folder, never to checkpoints/.

Two servers start: the app (app.build_demo on the shipped model, as `python app.py` serves it) and
a no-op app whose /predict has the app's inputs and outputs but does no work (it returns fixed
values), with Gradio's default settings. Two conditions: "idle" (nothing else runs) and "training"
(one client keeps a training run going in the app: bottom:4, 1,632 sentences (640 with --public), 3 epochs; a new run
starts when one ends; measured once it is past its first step) and "attack" (the app only, while
bench/attack.py's hostile visitors run: malformed predictions, a flood of training submissions from
made-up sessions, a big upload; the honest clients' errors and their requests/s against the app's own
idle phase are what count: goals 0 errors and >= 0.8x). In each condition the no-op phase
and the app phase, in turn, the order alternating by round; all of it `--rounds` times, so drifting
background load hits both alike. Each phase: `--clients` clients, each its own
session, send `--requests` predictions one after another, all starting together. Reported per
server and condition: requests/s over the phase, median and 95th-percentile latency, errors (an
exception or an answer without labels). Writes bench/results/load_test.json.
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time

from attack import summary
from common import ROOT, save, table

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

APP = """
import sys, tempfile
sys.path.insert(0, {root!r})
import app
from mtl_app import admission, predict
from mtl_app.context import AppContext
from mtl_app.server import launch_options
predict.PREDICT_BATCH, predict.PREDICT_CONCURRENCY = {batch}, {concurrency}
admission.YIELD_TO_REQUESTS = {yield_factor}
ctx = AppContext(device="cpu", saved_dir=tempfile.mkdtemp(prefix="mtl-load-"), public={public})
demo = app.build_demo(ctx)
opts = launch_options(ctx.limits)
demo.launch(server_name="127.0.0.1", server_port={port}, prevent_thread_lock=True, quiet=True, **opts)
print("ready", flush=True)
demo.block_thread()
"""

NOOP = """
import gradio as gr
TOPIC = {{"Travel": 0.9, "World": 0.05, "Sports": 0.05}}
SENTIMENT = {{"positive": 0.8, "neutral": 0.15, "negative": 0.05}}

def noop(text, choice):
    return TOPIC, SENTIMENT, "no-op"

with gr.Blocks() as demo:
    text, choice = gr.Textbox(), gr.Dropdown(["default"], value="default", allow_custom_value=True)
    outputs = [gr.Label(), gr.Label(), gr.Markdown()]
    gr.Button().click(noop, [text, choice], outputs, api_name="predict")
demo.queue()
demo.launch(server_name="127.0.0.1", server_port={port}, prevent_thread_lock=True, quiet=True)
print("ready", flush=True)
demo.block_thread()
"""

TEXTS = [
    "Not bad at all for a budget airline.",
    "Parliament passed the budget bill by 212 votes to 190.",
    "The striker scored twice as the home side won the cup final.",
    "Shares in the carmaker fell sharply after weak quarterly earnings.",
    "The clinic ran out of flu vaccine and patients were turned away.",
    "The telescope captured the sharpest image yet of a distant galaxy.",
]
BACKBONE_BOTTOM4 = ["embeddings", "layer.0", "layer.1", "layer.2", "layer.3"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(code: str, batch: int = 0, timeout: float = 180) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code.format(
                root=str(ROOT),
                port=port,
                batch=batch,
                concurrency=ARGS.concurrency,
                yield_factor=ARGS.yield_factor,
                public=ARGS.public,
            ),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=env,
        text=True,
    )
    ready = threading.Event()
    threading.Thread(target=lambda: proc.stdout.readline() == "ready\n" and ready.set(), daemon=True).start()
    if not ready.wait(timeout):
        proc.kill()
        raise SystemExit("a server did not start in time")
    return proc, f"http://127.0.0.1:{port}/"


def phase(url: str, clients: int, requests: int, deadline: float) -> dict:
    """`clients` sessions, each sending `requests` predictions in turn; all start together. Each visitor
    has an address of its own (X-Forwarded-For, which the server trusts from 127.0.0.1), as behind a
    Space's proxy, so the per-address limits see 20 visitors, not one."""
    from gradio_client import Client

    sessions = [Client(url, verbose=False, headers=visitor(k)) for k in range(clients)]
    latencies, errors, lock = [], [], threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def work(k: int, client) -> None:
        barrier.wait()
        for i in range(requests):
            left = deadline - time.monotonic()
            if left <= 0:
                with lock:
                    errors.append("deadline")
                return
            t0 = time.perf_counter()
            try:
                out = client.submit(TEXTS[(k + i) % len(TEXTS)], "default", api_name="/predict").result(timeout=left)
                ok = isinstance(out[0], dict) and out[0].get("label")
            except Exception as e:  # noqa: BLE001 - every failure is counted, whatever it is
                ok, out = False, repr(e)
            dt = time.perf_counter() - t0
            with lock:
                (latencies.append(dt) if ok else errors.append(str(out)[:200]))

    threads = [threading.Thread(target=work, args=(k, c)) for k, c in enumerate(sessions)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    for c in sessions:
        c.close()
    s = sorted(latencies)
    return {
        "requests": len(latencies) + len(errors),
        "ok": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:3],
        "seconds": seconds,
        "rps": len(latencies) / seconds,
        "median_ms": 1000 * statistics.median(s) if s else None,
        "p95_ms": 1000 * s[int(0.95 * (len(s) - 1))] if s else None,
        "latencies_ms": [round(1000 * x, 1) for x in latencies],
    }


def visitor(k: int) -> dict:
    """An honest visitor's address: 10.1.x.y (bench/attack.py's attackers use 10.66.x.y)."""
    return {"X-Forwarded-For": f"10.1.{k // 250}.{k % 250 + 1}"}


TRAINING = {"job": None}  # the training run going on, to read its progress


def training_steps() -> int:
    """Steps done by the training run going on (from its progress bar), 0 without one."""
    job = TRAINING["job"]
    outputs = job.outputs() if job is not None else []
    found = re.search(r"step (\d+) of", str(outputs[-1][0])) if outputs else None
    return int(found.group(1)) if found else 0


def keep_training(url: str, stop: threading.Event, log: list) -> None:
    """One training run in the app at all times: a new one starts when the last ends."""
    from gradio_client import Client

    client = Client(url, verbose=False, headers={"X-Forwarded-For": "10.2.0.1"})
    from mtl_app.context import PUBLIC_LIMITS

    sentences = PUBLIC_LIMITS.train_sentences if ARGS.public else 1632  # all of data/train.csv locally
    args = ("default", "pretrained", BACKBONE_BOTTOM4, 3, 32, 5e-5, 5e-3, "joint", sentences)
    while not stop.is_set():
        job = TRAINING["job"] = client.submit(*args, api_name="/train")
        while not job.done() and not stop.is_set():
            time.sleep(0.2)
        if stop.is_set():
            client.predict(api_name="/stop")
        status = job.result(timeout=120)[3]
        log.append(re.sub(r"[*■✓]", "", status.split("\n")[0]).strip()[:100])
    TRAINING["job"] = None
    client.close()


def merge(results: list[dict]) -> dict:
    """All phases of one server and condition: requests/s over their total time, latency over all requests."""
    seconds = sum(r["seconds"] for r in results)
    s = sorted(x for r in results for x in r["latencies_ms"])
    out = {
        "rps": len(s) / seconds,
        "median_ms": statistics.median(s) if s else None,
        "p95_ms": s[int(0.95 * (len(s) - 1))] if s else None,
        "errors": sum(r["errors"] for r in results),
        "requests": sum(r["requests"] for r in results),
    }
    return out


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--requests", type=int, default=15, help="predictions per client per phase")
    p.add_argument("--rounds", type=int, default=2, help="times each (condition, server) phase runs, alternating")
    p.add_argument("--phase-seconds", type=float, default=120, help="deadline of one phase")
    p.add_argument("--no-training", action="store_true", help="no phases with a training run")
    p.add_argument("--only-training", action="store_true", help="only the phases with a training run")
    p.add_argument("--no-attack", action="store_true", help="no phases under attack")
    p.add_argument("--public", action="store_true", help="the app with the public limits (python app.py --public)")
    p.add_argument("--flood", type=int, default=70, help="training submissions per flood (attack)")
    p.add_argument("--upload-mb", type=float, default=20.0, help="size of the attack's big upload")
    p.add_argument("--attacks", default="malformed,flood,upload", help="the attacks to run (bench/attack.py)")
    p.add_argument(
        "--batch",
        type=int,
        nargs="+",
        default=None,
        help="override mtl_app.predict.PREDICT_BATCH (1 = no batching); several values: one app server each, compared",
    )
    p.add_argument("--concurrency", type=int, default=None, help="override mtl_app.predict.PREDICT_CONCURRENCY")
    p.add_argument("--yield-factor", type=float, default=None, help="override mtl_app.admission.YIELD_TO_REQUESTS")
    p.add_argument("--output", default="load_test", help="name of the JSON file in bench/results/")
    args = p.parse_args()
    from mtl_app import admission, predict

    args.batch = args.batch or [predict.PREDICT_BATCH]
    args.concurrency = args.concurrency or predict.PREDICT_CONCURRENCY
    args.yield_factor = admission.YIELD_TO_REQUESTS if args.yield_factor is None else args.yield_factor
    return args


def attacked_phases(r, urls, runs, attacks) -> None:
    """One round under attack: each app's phase while bench/attack.py's attackers, a process of their
    own, run against it."""
    for name, url in urls.items():
        options = ["--flood", str(ARGS.flood), "--upload-mb", str(ARGS.upload_mb), "--attacks", ARGS.attacks]
        attackers = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "attack.py"), url, *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(3.0)  # the flood under way
        try:
            res = phase(url, ARGS.clients, ARGS.requests, time.monotonic() + ARGS.phase_seconds)
        finally:
            seen = json.loads(attackers.communicate(input="", timeout=120)[0] or "{}")
        runs[("attack", name)].append(res)
        attacks.append({"round": r + 1, "server": name, **seen})
        print(
            f"round {r + 1}   attack {name:>5}: {res['rps']:.1f} req/s, median {res['median_ms'] or 0:.0f} ms, "
            f"p95 {res['p95_ms'] or 0:.0f} ms, honest errors {res['errors']} {res['error_samples'][:1]}\n"
            f"    attackers saw: {summary(seen)}",
            file=sys.stderr,
        )


def run_condition(r, condition, urls, noop_url, runs, train_log) -> None:
    """One round of one condition: every server's phase, with a training run going on in each app if asked."""
    if condition == "attack":
        return attacked_phases(r, urls, runs, ATTACKS)
    stop, trainers = threading.Event(), []
    if condition == "training":
        for url in urls.values():
            trainers.append(threading.Thread(target=keep_training, args=(url, stop, train_log)))
            trainers[-1].start()
        end = time.monotonic() + 600
        while training_steps() == 0 and time.monotonic() < end:
            time.sleep(0.5)  # until the run is past building its model and caching the frozen layers
    servers = [("no-op", noop_url), *urls.items()]
    for name, url in servers if r % 2 == 0 else servers[::-1]:  # the order alternates by round
        res = phase(url, ARGS.clients, ARGS.requests, time.monotonic() + ARGS.phase_seconds)
        runs[(condition, name)].append(res)
        print(
            f"round {r + 1} {condition:>8} {name:>5}: {res['rps']:.1f} req/s, "
            f"median {res['median_ms'] or 0:.0f} ms, p95 {res['p95_ms'] or 0:.0f} ms, "
            f"errors {res['errors']} {res['error_samples'][:1]}",
            file=sys.stderr,
        )
    stop.set()
    for trainer in trainers:
        trainer.join(timeout=180)


def run_phases(apps: dict, conditions: list, runs: dict, train_log: list) -> None:
    procs = []
    try:
        t0 = time.monotonic()
        urls = {}
        for name, b in apps.items():
            proc, urls[name] = start_server(APP, b)
            procs.append(proc)
        noop_proc, noop_url = start_server(NOOP)
        procs.append(noop_proc)
        print(f"servers up in {time.monotonic() - t0:.0f} s: {urls}, no-op {noop_url}", file=sys.stderr)
        for r in range(ARGS.rounds):
            for condition in conditions:
                run_condition(r, condition, urls, noop_url, runs, train_log)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def report(total: dict, apps: dict, conditions: list, train_log: list) -> dict:
    """Print the table and the app / no-op ratios; return the ratios."""
    meanwhile = {
        "idle": "nothing else",
        "training": "one training run going on in the app",
        "attack": "malformed requests, a training flood, a big upload",
    }
    rows = [
        [
            name,
            meanwhile[c],
            f"{t['rps']:.1f}",
            f"{t['median_ms']:.0f}",
            f"{t['p95_ms']:.0f}",
            f"{t['errors']} / {t['requests']}",
        ]
        for (c, name), t in total.items()
    ]
    print(table(["server", "meanwhile", "requests/s", "median ms", "p95 ms", "errors"], rows))
    compared = [c for c in conditions if c != "attack"]
    ratios = {f"{a}, {c}": total[(c, a)]["rps"] / total[(c, "no-op")]["rps"] for c in compared for a in apps}
    if {"idle", "training"} <= set(conditions):
        for a in apps:
            ratios[f"{a} training / no-op idle"] = total[("training", a)]["rps"] / total[("idle", "no-op")]["rps"]
    if {"idle", "attack"} <= set(conditions):
        for a in apps:  # honest throughput under attack against the same app idle (goal >= 0.8)
            ratios[f"{a} under attack / {a} idle"] = total[("attack", a)]["rps"] / total[("idle", a)]["rps"]
    for k, v in ratios.items():
        print(f"app / no-op ({k}): {v:.2f}x")
    print(
        f"batch {ARGS.batch}, concurrency {ARGS.concurrency}, yield {ARGS.yield_factor:g}; the training runs, "
        "each stopped at the end of its condition's phases: " + (" | ".join(train_log) or "none"),
        file=sys.stderr,
    )
    return ratios


def main():
    global ARGS
    ARGS = parse_args()
    apps = {("app" if len(ARGS.batch) == 1 else f"app, batch {b}"): b for b in ARGS.batch}
    conditions = ["idle"] * (not ARGS.only_training) + ["training"] * (not ARGS.no_training)
    conditions += ["attack"] * (not (ARGS.no_attack or ARGS.only_training))
    if len(apps) > 1 and "training" in conditions:
        raise SystemExit("compare several --batch values with --no-training (one training run per app otherwise)")
    runs = {(c, name): [] for c in conditions for name in ("no-op", *apps) if not (c == "attack" and name == "no-op")}
    train_log = []
    run_phases(apps, conditions, runs, train_log)
    total = {key: merge(res) for key, res in runs.items()}
    ratios = report(total, apps, conditions, train_log)
    path = save(
        ARGS.output,
        {
            "command": "python bench/load_test.py " + " ".join(sys.argv[1:]),
            "clients": ARGS.clients,
            "requests_per_client_per_phase": ARGS.requests,
            "rounds": ARGS.rounds,
            "predict_batch": ARGS.batch,
            "predict_concurrency": ARGS.concurrency,
            "yield_to_requests": ARGS.yield_factor,
            "public": ARGS.public,
            "attacks": ATTACKS,
            "training_log": train_log,
            "phases": {f"{c} {name}": res for (c, name), res in runs.items()},
            "total": {f"{c} {name}": t for (c, name), t in total.items()},
            "app_over_noop": ratios,
            "load_average": os.getloadavg(),
        },
    )
    print(f"wrote {path}", file=sys.stderr)


ARGS = None
ATTACKS = []  # what the attackers saw, per round and app

if __name__ == "__main__":
    main()
