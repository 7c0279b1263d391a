"""The hostile visitors of bench/load_test.py's "attack" condition, each a thread that runs until told
to stop, through the raw HTTP API (as a script that skips the page would), on 127.0.0.1 only. The load
test runs them in a process of their own (so they do not take the honest clients' share of Python):

    python bench/attack.py URL [--flood 70] [--flood-every 20] [--upload-mb 20] [--attacks malformed,flood,upload]

attacks until its standard input closes, then prints what the attackers saw as JSON.

- malformed predictions: /predict with a model choice that is not text (a number, a list, an object),
  one after another, each read to its end, from one address (one script);
- a training flood: every `--flood-every` seconds, `--flood` /train submissions from as many made-up
  sessions and addresses (many machines, as a botnet would), spread over a few seconds, nobody
  listening to any of them;
- a big upload: a `--upload-mb` MB file posted to the upload route (and to a look-alike path) once a
  second, from one address.

Addresses are sent as X-Forwarded-For, which the server trusts from 127.0.0.1 (as behind a Space's
proxy): attackers are 10.66.x.y, bench/load_test.py's honest visitors 10.1.x.y.

Each returns what it saw, counted by answer (HTTP status, or the queue's event): Attackers.report().
"""

import argparse
import collections
import json
import sys
import threading
import time
import uuid

import httpx

TEXT = "The minister resigned in disgrace after the expenses scandal."
NOT_TEXT = [42, ["default"], {"model": "default"}]  # model choices that are not a name
MALFORMED_FROM, UPLOAD_FROM = {"X-Forwarded-For": "10.66.0.1"}, {"X-Forwarded-For": "10.66.0.2"}
HEAVY_RUN = ["default", "pretrained", [], 3, 8, 5e-5, 5e-3, "joint", 640]  # the costliest run a form allows
ATTACKS = ("malformed", "flood", "upload")


def api_index(url: str, api_name: str) -> int:
    """The fn_index a raw call needs, read from the page's config as a browser does."""
    config = httpx.get(url + "config", timeout=30).json()
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)


class Attackers:
    """The three attacks on one app, in threads: start(), then stop() and report()."""

    def __init__(self, url: str, flood: int = 70, flood_every: float = 20.0, upload_mb: float = 20.0):
        self.url, self.flood, self.flood_every = url, flood, flood_every
        self.upload = b"x" * int(upload_mb * 1_000_000)
        self.seen = {name: collections.Counter() for name in ("malformed", "flood", "upload")}
        self._stop, self._lock, self._threads = threading.Event(), threading.Lock(), []

    def count(self, attack: str, answer) -> None:
        with self._lock:
            self.seen[attack][str(answer)] += 1

    def start(self, attacks=ATTACKS) -> None:
        targets = {"malformed": self.malformed, "flood": self.training_flood, "upload": self.big_upload}
        for name in attacks:
            self._threads.append(threading.Thread(target=targets[name], daemon=True))
            self._threads[-1].start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def report(self) -> dict:
        return {name: dict(counter) for name, counter in self.seen.items()}

    def malformed(self) -> None:
        """/predict with a model choice that is not text, read to its end, one after another."""
        k = 0
        with httpx.Client(timeout=60, headers=MALFORMED_FROM) as http:
            while not self._stop.is_set():
                choice = NOT_TEXT[k % len(NOT_TEXT)]
                k += 1
                try:
                    r = http.post(self.url + "gradio_api/call/predict", json={"data": [TEXT, choice]})
                    if r.status_code != 200:
                        self.count("malformed", r.status_code)
                        continue
                    event = r.json()["event_id"]
                    with http.stream("GET", self.url + f"gradio_api/call/predict/{event}") as stream:
                        last = [line for line in stream.iter_lines() if line.startswith("event:")][-1:]
                    self.count("malformed", last[0][6:].strip() if last else "no answer")
                except (httpx.HTTPError, ValueError, KeyError) as e:
                    self.count("malformed", type(e).__name__)

    def training_flood(self) -> None:
        """`flood` /train submissions from made-up sessions over ~5 s, every `flood_every` s, unread."""
        index = api_index(self.url, "train")
        with httpx.Client(timeout=30) as http:
            while not self._stop.is_set():
                started = time.monotonic()
                for k in range(self.flood):
                    body = {
                        "data": [None, *HEAVY_RUN],
                        "fn_index": index,
                        "session_hash": uuid.uuid4().hex,
                        "event_data": None,
                        "trigger_id": None,
                    }
                    try:
                        bot = {"X-Forwarded-For": f"10.66.{1 + k // 250}.{k % 250 + 1}"}
                        answer = http.post(self.url + "gradio_api/queue/join", json=body, headers=bot)
                        self.count("flood", answer.status_code)
                    except httpx.HTTPError as e:
                        self.count("flood", type(e).__name__)
                    if self._stop.wait(5.0 / self.flood):
                        return
                self._stop.wait(max(0.0, self.flood_every - (time.monotonic() - started)))

    def big_upload(self) -> None:
        """A big file to the upload route and to a look-alike path, once a second."""
        paths = ["gradio_api/upload", "gradio_api/call/upload"]
        k = 0
        with httpx.Client(timeout=60, headers=UPLOAD_FROM) as http:
            while not self._stop.is_set():
                path = paths[k % len(paths)]
                k += 1
                try:
                    answer = http.post(self.url + path, files={"files": ("big.csv", self.upload, "text/csv")})
                    self.count("upload", f"{path.split('/', 1)[1]} {answer.status_code}")
                except httpx.HTTPError as e:
                    self.count("upload", f"{path.split('/', 1)[1]} {type(e).__name__}")
                self._stop.wait(1.0)


def main() -> None:
    p = argparse.ArgumentParser(description="Attack the app at URL until standard input closes.")
    p.add_argument("url")
    p.add_argument("--flood", type=int, default=70)
    p.add_argument("--flood-every", type=float, default=20.0)
    p.add_argument("--upload-mb", type=float, default=20.0)
    p.add_argument("--attacks", default=",".join(ATTACKS), help="which, comma-separated")
    args = p.parse_args()
    attackers = Attackers(args.url, args.flood, args.flood_every, args.upload_mb)
    attackers.start([a for a in args.attacks.split(",") if a])
    sys.stdin.read()  # the load test closes it when the honest clients are done
    attackers.stop()
    print(json.dumps(attackers.report()), flush=True)


def summary(report: dict) -> str:
    """One line per attack: its answers and how many of each."""
    return "; ".join(f"{name}: {json.dumps(counts, sort_keys=True)}" for name, counts in report.items())


if __name__ == "__main__":
    main()
