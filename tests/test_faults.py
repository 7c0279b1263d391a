"""Crash safety: SIGKILL a process at random moments while it saves checkpoints over the same
directory; the checkpoint must always load, complete and consistent, as one of the saved versions."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import torch
from conftest import REPO

from mtl.checkpoint import load_checkpoint, save_checkpoint

CHILD = textwrap.dedent(
    """
    import sys, torch
    from mtl.checkpoint import load_checkpoint, save_checkpoint
    model = load_checkpoint(sys.argv[1], device="cpu")
    model.trained_params = {n for n, _ in model.encoder[0].model.named_parameters() if ".layer.1." in n}
    print("ready", flush=True)
    version = 1
    while True:  # each version sets every head bias to its number, and layer 1 to match
        with torch.no_grad():
            for head in model.heads.values():
                head.net[-1].bias.fill_(float(version))
            model.encoder[0].model.encoder.layer[1].output.dense.bias.fill_(float(version))
        save_checkpoint(model, sys.argv[1])
        version += 1
    """
)


def test_sigkill_during_saves_never_breaks_the_checkpoint(tiny_model, tmp_path):
    path = tmp_path / "ck"
    with torch.no_grad():
        for head in tiny_model.heads.values():
            head.net[-1].bias.fill_(0.0)
    save_checkpoint(tiny_model, path)
    texts = ["the team won", "awful market news"]
    rng = random.Random(0)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    seen = set()
    for _ in range(20):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, env=env, cwd=REPO)
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait()
        model = load_checkpoint(path, device="cpu")  # must load: complete, checksums intact
        version = model.heads["topic"].net[-1].bias[0].item()
        seen.add(version)
        for head in model.heads.values():
            assert torch.all(head.net[-1].bias == version)  # heads from one version
        layer_bias = model.encoder[0].model.encoder.layer[1].output.dense.bias
        if version > 0:
            assert torch.all(layer_bias == version)  # encoder weights from the same version
        again = load_checkpoint(path, device="cpu")
        for t, p in model.predict_proba(texts).items():
            assert torch.equal(p, again.predict_proba(texts)[t])
    assert len(seen) > 3  # the kills really did land between different saves
