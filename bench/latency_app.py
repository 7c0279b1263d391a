"""Single-sentence latency, in process and through the running app with gradio_client (one client,
sequential requests), measured in the same run; plus a no-op Gradio app with the same inputs and
outputs, which shows how much of the app's latency is Gradio and the client rather than the model.

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


def noop_demo():
    import gradio as gr

    topic, sentiment = {"Sports": 0.9, "World": 0.1}, {"positive": 0.8, "neutral": 0.2}
    with gr.Blocks() as demo:
        text, choice = gr.Textbox(), gr.Dropdown(["default"], value="default", allow_custom_value=True)
        outputs = [gr.Label(), gr.Label(), gr.Markdown()]
        gr.Button().click(lambda t, c: (topic, sentiment, "no-op"), [text, choice], outputs, api_name="predict")
    return demo


def through(demo, launch_options) -> list[float]:
    from gradio_client import Client

    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        for _ in range(10):
            client.predict(SENTENCE, "default", api_name="/predict")
        out = []
        for _ in range(REQUESTS):
            t0 = time.perf_counter()
            client.predict(SENTENCE, "default", api_name="/predict")
            out.append(time.perf_counter() - t0)
        return out
    finally:
        demo.close()


def main():
    import app
    from mtl_app.context import DEFAULT_CHECKPOINT, AppContext
    from mtl_app.server import launch_options

    ctx = AppContext(DEFAULT_CHECKPOINT, saved_dir=tempfile.mkdtemp(), device="cpu")
    model = ctx.default_model
    samples = {"in process (model.predict)": []}
    for _ in range(10):
        model.predict([SENTENCE])
    for _ in range(REQUESTS):
        t0 = time.perf_counter()
        model.predict([SENTENCE])
        samples["in process (model.predict)"].append(time.perf_counter() - t0)

    samples["through the app (gradio_client /predict)"] = through(app.build_demo(ctx), launch_options())
    samples["no-op Gradio app (gradio_client /predict)"] = through(noop_demo(), {})
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
