"""The app served on a free local port and driven through its API with gradio_client, as a
script or another app would: every event has an api_name."""

import time

import pytest
from app_helpers import BACKBONE, launch, make_context
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from mtl_app.context import SESSION_MODEL

# gradio 6.31 itself uses pandas options that pandas 3 deprecates
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
TEXT = "The minister resigned in disgrace after the expenses scandal."


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ctx = make_context(tmp_path_factory.mktemp("saved"))
    demo, url = launch(ctx)
    yield ctx, url
    demo.close()


def client(server) -> Client:
    """A new client is a new browser session."""
    return Client(server[1], verbose=False)


BOTTOM4 = BACKBONE[:5]  # embeddings + layers 0-3: layers 4-5 and the heads train, steps take real time


def train_args(n=64, lr_heads=5e-3, frozen=BACKBONE, epochs=1):
    return ("default", "pretrained", frozen, epochs, 8, 5e-5, lr_heads, "joint", n)


def confidences(label: dict) -> dict:
    return {c["label"]: c["confidence"] for c in label["confidences"]}


def wait_for(condition, timeout=120.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def loss_rows(output) -> int:
    plot = output[1]
    return len(plot.get("data") or []) if isinstance(plot, dict) else 0


def test_predict_returns_both_label_distributions(server):
    ctx, _ = server
    topic, sentiment, info = client(server).predict(TEXT, "default", api_name="/predict")
    assert topic["label"] == "Politics" and sentiment["label"] == "negative"
    assert set(confidences(topic)) == set(ctx.tasks["topic"])
    assert set(confidences(sentiment)) == set(ctx.tasks["sentiment"])
    assert sum(confidences(topic).values()) == pytest.approx(1, abs=1e-3)
    assert "ms for one forward pass" in info


def test_bad_input_gets_a_message_not_an_error(server):
    c = client(server)
    assert "empty" in c.predict("   ", "default", api_name="/predict")[-1]
    assert "at least two" in c.predict("just one line", "mean", "default", api_name="/embed")[-1]
    html, summary, _, status = c.predict(
        "\n".join(f"line {i}" for i in range(300)), "max", "default", api_name="/embed"
    )
    assert "mtl-heatmap" in html and "Most similar" in summary and "first 32" in status
    assert "no trained model" in c.predict(TEXT, SESSION_MODEL, api_name="/predict")[-1]


def test_batch_file_gives_a_table_and_a_csv(server, tmp_path):
    path = tmp_path / "three.txt"
    path.write_text("The striker scored.\nShares fell.\nThe hotel was lovely.\n")
    table, csv_path, status = client(server).predict(handle_file(str(path)), "default", api_name="/predict_file")
    table = table.get("value", table)  # shown with gr.update(visible=True)
    csv_path = csv_path.get("value", csv_path) if isinstance(csv_path, dict) else csv_path
    assert table["headers"][:5] == ["text", "topic", "topic_score", "sentiment", "sentiment_score"]
    assert len(table["data"]) == 3 and "3 sentences" in status
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("sentence;label\nhello;World\n")
    assert (
        "no 'text' column" in client(server).predict(handle_file(str(wrong)), "default", api_name="/predict_file")[-1]
    )
    image = tmp_path / "image.png"
    image.write_bytes(b"\x89PNG")
    with pytest.raises(AppError, match="Invalid file type"):  # refused by gr.File itself, with this message
        client(server).predict(handle_file(str(image)), "default", api_name="/predict_file")


def test_freeze_presets_through_the_api(server):
    c = client(server)
    frozen, _, summary = c.predict("all", 2, [], "pretrained", api_name="/freeze_preset")
    assert len(frozen) == 9 and "Everything is frozen" in summary
    preset, k, summary = c.predict(["embeddings", "layer.0", "layer.1"], "pretrained", api_name="/freeze_components")
    assert preset == "bottom" and "Trainable:" in summary


def test_training_streams_losses_then_becomes_the_active_model(server):
    c = client(server)
    job = c.submit(*train_args(n=192, frozen=BOTTOM4), api_name="/train")
    final = job.result(timeout=300)
    sizes = [loss_rows(o) for o in job.outputs()[:-1]]
    assert len({s for s in sizes if s > 0}) >= 3  # several loss updates before the end
    assert loss_rows(final) >= max(sizes)
    assert "Training finished" in final[3] and final[4]["value"] == SESSION_MODEL
    assert "trained here on 192 sentences" in final[5]
    topic, _, info = c.predict(TEXT, SESSION_MODEL, api_name="/predict")
    assert "this session's trained model" in info
    assert "already exists" not in c.predict("client-run", SESSION_MODEL, api_name="/save_model")[0]
    assert "shipped model" in c.predict("default", SESSION_MODEL, api_name="/save_model")[0]
    assert "letters, digits" in c.predict("../up", SESSION_MODEL, api_name="/save_model")[0]
    assert "client-run" in [v for _, v in c.predict(SESSION_MODEL, api_name="/refresh_models")["choices"]]


def test_stop_ends_a_run(server):
    c = client(server)
    job = c.submit(*train_args(n=512, frozen=BOTTOM4), api_name="/train")
    wait_for(lambda: any(loss_rows(o) >= 4 for o in job.outputs()))
    assert "Stopping" in c.predict(api_name="/stop")
    final = job.result(timeout=120)
    assert "Stopped" in final[3] and "of 64 steps" in final[3] and final[4]["value"] == SESSION_MODEL
    assert loss_rows(final) < 2 * 64


def test_two_sessions_queue_and_do_not_see_each_others_models(server):
    a, b, c = client(server), client(server), client(server)
    before = confidences(c.predict(TEXT, "default", api_name="/predict")[0])
    ja = a.submit(*train_args(n=384, lr_heads=1e-2, frozen=BOTTOM4), api_name="/train")
    wait_for(lambda: any(loss_rows(o) > 0 for o in ja.outputs()))
    jb = b.submit(*train_args(n=96, lr_heads=5e-4), api_name="/train")
    t0 = time.monotonic()
    c.predict(TEXT, "default", api_name="/predict")  # predictions are served while a session trains
    assert time.monotonic() - t0 < 10 and not ja.done()
    waited = []
    while not ja.done():  # b waits for its turn inside the handler (ctx.admit_training), saying so
        waited.append(any("Waiting for a training slot: 1 run ahead" in str(o[3]) for o in jb.outputs()))
        time.sleep(0.05)
    assert any(waited)  # one training slot: b waited for a
    ra, rb = ja.result(timeout=300), jb.result(timeout=300)
    assert "Training finished" in ra[3] and "Training finished" in rb[3]
    pa = confidences(a.predict(TEXT, SESSION_MODEL, api_name="/predict")[0])
    pb = confidences(b.predict(TEXT, SESSION_MODEL, api_name="/predict")[0])
    assert pa != pb
    assert "384 sentences" in a.predict(SESSION_MODEL, api_name="/model_info")
    assert "96 sentences" in b.predict(SESSION_MODEL, api_name="/model_info")
    assert "no trained model" in c.predict(TEXT, SESSION_MODEL, api_name="/predict")[-1]
    assert confidences(c.predict(TEXT, "default", api_name="/predict")[0]) == before
