"""The running app under hostile requests, through its raw HTTP API as an attacker would send them:
one visitor's malformed, oversized or repeated requests must never cost the other visitors.

- malformed predictions sent together with good ones (so that they meet in one forward pass) fail
  alone, each with its own message;
- request bodies are limited by exact route (no path that merely ends in /upload escapes);
- uploads are limited as they arrive: size, files per request, uploads per address; and an upload is
  deleted once read;
- a file prediction lets another visitor's sentence in between two chunks;
- one address that sends requests back to back is answered 429 at the door; other addresses are not;
- a warning pop-up shows a visitor's text as text, never as HTML (in Chromium).
"""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from app_helpers import launch, make_context

from mtl_app import predict
from mtl_app.context import PUBLIC_LIMITS

# gradio 6.31 itself uses pandas options that pandas 3 deprecates
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
CHROMIUM = "/usr/bin/chromium"
FILE_DATA = {"meta": {"_type": "gradio.FileData"}}
GOOD = [e.text for e in predict.PREDICT_EXAMPLES[:8]]
MALFORMED = {  # a prediction request's [text, model choice] as an attacker may send it
    "choice-number": (["Shares fell.", 5], "The model choice must be text, not a number"),
    "choice-list": (["Shares fell.", [1, 2]], "The model choice must be text, not a list"),
    "choice-object": (["Shares fell.", {"a": 1}], "The model choice must be text, not an object"),
    "choice-bool": (["Shares fell.", True], "The model choice must be text, not true/false"),
    "text-server-file": ([{"path": "/etc/passwd", **FILE_DATA}, "default"], None),  # Gradio refuses it
}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return make_context(tmp_path_factory.mktemp("saved"))


@pytest.fixture(scope="module")
def server(ctx):
    demo, url = launch(ctx)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def public_server(ctx):
    """The same app under the public limits (as `python app.py --public` serves it)."""
    from app_helpers import free_port

    import app
    from mtl_app.server import launch_options

    public = ctx.with_limits(PUBLIC_LIMITS)
    demo, port = app.build_demo(public), free_port()
    options = launch_options(public.limits)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **options)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def call(url: str, api: str, data: list) -> tuple[str, object]:
    """One request through the raw API: ("complete", outputs), ("error", message) or ("refused", status)."""
    r = httpx.post(f"{url}gradio_api/call/{api}", json={"data": data}, timeout=60)
    if r.status_code != 200:
        return "refused", r.status_code
    return read_events(url, api, r.json()["event_id"])


def read_events(url: str, api: str, event_id: str) -> tuple[str, object]:
    """The last event of a call (its result or its error) as the raw API streams it."""
    body = httpx.get(f"{url}gradio_api/call/{api}/{event_id}", timeout=300).text
    events = [block.split("\n") for block in body.strip().split("\n\n")]
    kind, data = events[-1][0].removeprefix("event: "), events[-1][1].removeprefix("data: ")
    return kind, json.loads(data)


def wait_for(condition, timeout=120.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def pending(n: int):
    """Wait until n predictions wait for (or are in) a forward pass (3 s where that cannot be seen)."""
    passes = getattr(predict, "PASSES", None)
    if passes is None:
        return time.sleep(3)
    wait_for(lambda: passes.pending() >= n)


class PassLog:
    """Spies on a model's forward passes: ("start" or "end", sentences), in order, from every thread."""

    def __init__(self, model, monkeypatch):
        self.events, real = [], model.predict

        def predict_spy(texts, *args, **kwargs):
            self.events.append(("start", len(texts)))
            out = real(texts, *args, **kwargs)
            self.events.append(("end", len(texts)))
            return out

        monkeypatch.setattr(model, "predict", predict_spy)


def test_malformed_predictions_batched_with_good_ones_fail_alone(server, ctx, monkeypatch):
    expected = [p["topic"]["label"] for p in ctx.default_model.predict(GOOD)]
    passes = PassLog(ctx.default_model, monkeypatch)
    requests = [[text, "default"] for text in GOOD] + [data for data, _ in MALFORMED.values()]
    lock = ctx.model_lock(ctx.default_model)
    with ThreadPoolExecutor(len(requests) + 1) as pool:
        with lock:  # the model is busy: every request below waits for the same next pass
            first = pool.submit(call, server, "predict", ["The first visitor's sentence.", "default"])
            pending(1)
            futures = [pool.submit(call, server, "predict", data) for data in requests]
            pending(1 + len(GOOD))
        results = [f.result() for f in futures]
        assert first.result()[0] == "complete"
    for text, label, (kind, outputs) in zip(GOOD, expected, results):
        assert kind == "complete" and outputs[0]["label"] == label, (text, kind, outputs)
        assert "ms for one forward pass" in outputs[-1]
    for (name, (_, message)), (kind, outputs) in zip(MALFORMED.items(), results[len(GOOD) :]):
        if message is None:
            assert kind == "error", name  # refused by Gradio before the handler, on its own
        else:
            assert kind == "complete" and message in outputs[-1], (name, outputs)
    assert ("start", len(GOOD)) in passes.events  # the good ones did share one pass


@pytest.mark.parametrize("route", ["gradio_api/call/upload", "gradio_api/run/upload", "gradio_api/api/upload"])
def test_a_big_body_on_a_route_that_merely_ends_in_upload_is_refused(server, route):
    from mtl_app.server import MAX_REQUEST_BYTES

    r = httpx.post(server + route, json={"data": ["x" * (MAX_REQUEST_BYTES + 1)]}, timeout=60)
    assert r.status_code == 413 and r.text == "Request body too large"

    def chunks():  # no Content-Length: cut off at the limit as it arrives
        for _ in range(3):
            yield b"x" * MAX_REQUEST_BYTES

    with pytest.raises(httpx.HTTPError):
        httpx.post(server + route, content=chunks(), timeout=60).raise_for_status()
    assert httpx.get(server + "gradio_api/info", timeout=30).status_code == 200  # still serving


def test_gradios_screen_recording_route_is_closed(server):
    r = httpx.post(server + "gradio_api/process_recording", files={"video": ("v.mp4", b"\0" * 1000)}, timeout=60)
    assert r.status_code == 403  # it would run ffmpeg on a visitor's video; this app records nothing


def upload(url: str, *files: tuple[str, bytes], address: str = "10.0.0.1") -> httpx.Response:
    """POST files to Gradio's upload route as from `address` (uvicorn trusts X-Forwarded-For from 127.0.0.1)."""
    form = [("files", (name, content, "text/plain")) for name, content in files]
    return httpx.post(url + "gradio_api/upload", files=form, headers={"X-Forwarded-For": address}, timeout=60)


def upload_folder_files() -> set[Path]:
    from gradio.utils import get_upload_folder

    return {p for p in Path(get_upload_folder()).rglob("*") if p.is_file()}


def test_uploads_over_the_public_limits_are_refused_as_they_arrive(public_server):
    line = b"The striker scored twice as the home side won the cup final.\n"
    limit = PUBLIC_LIMITS.upload_bytes  # the README's 200 KB
    exactly = (line * (limit // len(line) + 1))[:limit]
    ok = upload(public_server, ("fits.txt", exactly), address="10.0.1.1")
    assert ok.status_code == 200 and Path(ok.json()[0]).stat().st_size == limit
    before = upload_folder_files()
    assert upload(public_server, ("big.txt", exactly + b"x"), address="10.0.1.1").status_code == 413
    assert upload(public_server, ("huge.txt", exactly * 25), address="10.0.1.1").status_code == 413
    two = upload(public_server, ("a.txt", line), ("b.txt", line), address="10.0.1.1")
    assert two.status_code == 413 and "1 file" in two.text
    assert upload_folder_files() <= before  # nothing refused was written


def test_one_address_cannot_upload_without_end(public_server):
    answers = [upload(public_server, (f"n{i}.txt", f"sentence {i}\n".encode()), address="10.0.2.1") for i in range(61)]
    assert [r.status_code for r in answers[:60]] == [200] * 60
    assert answers[60].status_code == 429 and "Upload limit" in answers[60].text
    assert upload(public_server, ("other.txt", b"another visitor\n"), address="10.0.2.2").status_code == 200


def test_an_upload_is_deleted_once_read(server):
    path = upload(server, ("three.txt", b"The striker scored.\nShares fell.\nThe hotel was lovely.\n")).json()[0]
    assert Path(path).is_file()
    kind, (table, _, status) = call(server, "predict_file", [{"path": path, **FILE_DATA}, "default"])
    assert kind == "complete" and "3 sentences" in status and len(table["value"]["data"]) == 3
    assert not Path(path).exists()


def test_a_file_prediction_lets_another_visitor_in_between_chunks(server, ctx, monkeypatch, tmp_path):
    passes = PassLog(ctx.default_model, monkeypatch)
    lines = [f"{t} ({i})" for i in range(1000 // len(GOOD)) for t in GOOD][:1000]
    path = upload(server, ("thousand.txt", ("\n".join(lines) + "\n").encode())).json()[0]
    with ThreadPoolExecutor(1) as pool:
        file = pool.submit(call, server, "predict_file", [{"path": path, **FILE_DATA}, "default"])
        wait_for(lambda: any(n > 1 for kind, n in passes.events if kind == "start"))
        mark = len(passes.events)
        kind, outputs = call(server, "predict", [GOOD[0], "default"])
        assert kind == "complete" and "ms for one forward pass" in outputs[-1]
        assert not file.done()
        kind, (table, _, status) = file.result()
    assert kind == "complete" and "1,000 sentences" in status
    after = passes.events[mark:]
    mine = after.index(("start", 1))
    file_ends = [i for i, (kind, n) in enumerate(after) if kind == "end" and n > 1]
    assert mine < file_ends[-1]  # the visitor's pass came before the file's last chunk
    # chunks started before its own pass: none once it is queued (test_app_predict checks that exactly);
    # here, from the client's side, one or two while the request made its way in through HTTP
    assert sum(kind == "start" for kind, _ in after[:mine]) <= 2


def test_upload_quotas_per_address_and_in_all_slide_with_the_window(monkeypatch):
    from mtl_app import server

    now = [1000.0]
    monkeypatch.setattr(server.time, "monotonic", lambda: now[0])
    log = server.UploadLog(server.UploadLimits(100, client_files=2, client_bytes=150, total_files=3, window=60))
    assert log.refuse("a", 2, 10)[0] == 413  # two files in one request
    assert log.refuse("a", 1, 100) is None and log.refuse("a", 1, 60)[0] == 429  # bytes per address
    assert log.refuse("a", 1, 10) is None and log.refuse("a", 1, 10)[0] == 429  # files per address
    assert log.refuse("b", 1, 10) is None and log.refuse("c", 1, 10)[0] == 503  # files from everyone
    now[0] += 61  # an hour (here a minute) later, all of it has expired
    assert log.refuse("a", 1, 100) is None and log.refuse("c", 1, 10) is None


def test_an_address_sending_events_back_to_back_is_slowed_and_no_other(public_server):
    rate, url = PUBLIC_LIMITS.event_rate, public_server + "gradio_api/call/predict"
    attacker, visitor = {"X-Forwarded-For": "10.0.3.1"}, {"X-Forwarded-For": "10.0.3.2"}
    with httpx.Client(timeout=30) as http:
        start = time.monotonic()
        answers = [http.post(url, json={"data": [GOOD[0], 42]}, headers=attacker) for _ in range(rate.burst + 20)]
        elapsed = time.monotonic() - start
        codes = [r.status_code for r in answers]
        assert codes[: rate.burst] == [200] * rate.burst  # a burst goes through (to its own message)
        assert codes.count(200) <= rate.burst + rate.per_second * elapsed + 1
        refused = answers[codes.index(429)]
        assert "Too many actions from your address" in refused.text and int(refused.headers["retry-after"]) >= 1
        good = http.post(url, json={"data": [GOOD[0], "default"]}, headers=visitor)
        assert good.status_code == 200  # another address is not slowed
        kind, outputs = read_events(public_server, "predict", good.json()["event_id"])
        assert kind == "complete" and "ms for one forward pass" in outputs[-1]
        time.sleep(1.0 / rate.per_second + 0.05)  # the attacker's bucket refills: one more goes through
        assert http.post(url, json={"data": [GOOD[0], 42]}, headers=attacker).status_code == 200


def test_token_buckets_refill_and_forget_idle_addresses():
    from mtl_app.rates import Buckets, Rate

    now = [0.0]
    buckets = Buckets(Rate(per_second=2, burst=3), max_keys=2, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(4)] == [True, True, True, False]
    assert buckets.retry_after("a") == 1
    now[0] += 0.5  # half a second: one token back
    assert buckets.take("a") and not buckets.take("a")
    assert buckets.take("b") and buckets.take("c")  # a third address: full (idle) buckets are forgotten
    now[0] += 10
    assert [buckets.take("a") for _ in range(4)] == [True, True, True, False]  # refilled to the burst, no more
    with pytest.raises(ValueError):
        Rate(per_second=0, burst=1)


def test_only_gradios_uploads_are_ever_deleted(tmp_path):
    from gradio.utils import get_upload_folder

    from mtl_app.server import discard_upload

    mine = tmp_path / "mine.txt"
    mine.write_text("not an upload\n")
    discard_upload(mine)
    discard_upload({"path": str(mine)})
    assert mine.is_file()
    folder = Path(get_upload_folder()) / "0123abcd-test"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "up.txt").write_text("an upload\n")
    discard_upload(folder / "up.txt")
    assert not folder.exists()  # the file and its folder, now empty


@pytest.fixture(scope="module")
def browser(server):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium); CI does")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A new visitor's page."""
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    page.set_default_timeout(90_000)
    page.goto(server)
    yield page
    page.close()


def test_a_warning_shows_a_visitors_markup_as_text(page):
    from playwright.sync_api import expect

    name = "<img src=x onerror=alert(1)><b>x</b>"
    box = page.locator("#model-picker input")
    box.fill(name)
    box.press("Enter")
    toast = page.locator("[data-testid='toast-text']").filter(has_text="is not a model name").first
    expect(toast).to_be_visible()
    expect(page.locator("img[src='x']")).to_have_count(0)  # no element made of it, in the pop-up or anywhere
    expect(toast.locator("*")).to_have_count(0)
    assert name in toast.inner_text()  # shown as the text it is


def test_a_file_uploaded_in_the_browser_is_predicted_then_deleted(page, tmp_path):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Predict", exact=True).click()
    path = tmp_path / "three.txt"
    path.write_text("The striker scored.\nShares fell.\nThe hotel was lovely.\n")
    before = upload_folder_files()
    page.locator("input[type=file]").first.set_input_files(str(path))  # Gradio's own upload, then the event
    expect(page.get_by_text("3 sentences from")).to_be_visible()
    assert not {p for p in upload_folder_files() - before if p.name == "three.txt"}
