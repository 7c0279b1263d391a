"""Single-sentence latency, in process and through the running app with gradio_client (one client,
sequential requests), measured in the same run.

Run: python bench/latency_app.py   (writes bench/results/latency_app.json)
"""

import socket
import tempfile
import time

from common import ROOT, machine, percentiles, save, table

SENTENCE = "The striker scored twice as the home side won the cup final."
REQUESTS = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    from gradio_client import Client

    import app
    from mtl.ui import DEFAULT_CHECKPOINT, AppContext

    ctx = AppContext(DEFAULT_CHECKPOINT, saved_dir=tempfile.mkdtemp(), device="cpu")
    model = ctx.default_model
    samples = {"in process (model.predict)": []}
    for _ in range(10):
        model.predict([SENTENCE])
    for _ in range(REQUESTS):
        t0 = time.perf_counter()
        model.predict([SENTENCE])
        samples["in process (model.predict)"].append(time.perf_counter() - t0)

    demo = app.build_demo(ctx)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.LAUNCH_OPTIONS)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        for _ in range(10):
            client.predict(SENTENCE, "default", api_name="/predict")
        key = "through the app (gradio_client /predict)"
        samples[key] = []
        for _ in range(REQUESTS):
            t0 = time.perf_counter()
            client.predict(SENTENCE, "default", api_name="/predict")
            samples[key].append(time.perf_counter() - t0)
    finally:
        demo.close()
    stats = {k: percentiles(v) for k, v in samples.items()}
    info = machine()
    print(f"CPU: {info['cpu']}, {info['threads']} threads; {REQUESTS} sequential requests, one sentence each\n")
    print(
        table(
            ["path", "median (ms)", "p95 (ms)"],
            [[k, f"{v['median_ms']:.1f}", f"{v['p95_ms']:.1f}"] for k, v in stats.items()],
        )
    )
    print(f"\nwrote {save('latency_app', {'requests': REQUESTS, 'latency': stats}).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
