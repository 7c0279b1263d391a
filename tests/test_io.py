"""mtl.io: hashes, atomic files and atomic folders (the one way the loop, export and the app write a folder)."""

import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from conftest import REPO

from mtl import io
from mtl.io import atomic_directory, file_sha256, weights_sha256, write_atomic


def _folder(path):
    return {p.name: p.read_text() for p in sorted(path.iterdir())}


def test_hashes(tmp_path):
    (tmp_path / "f").write_bytes(b"abc" * 1000)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(b"abc" * 1000).hexdigest()
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    assert weights_sha256(a) != weights_sha256(b)
    b.load_state_dict(a.state_dict())
    assert weights_sha256(a) == weights_sha256(b)


def test_write_atomic_replaces_whole_or_not_at_all(tmp_path):
    path = tmp_path / "out.txt"
    write_atomic(path, lambda tmp: open(tmp, "w").write("one"))
    assert path.read_text() == "one" and oct(path.stat().st_mode & 0o777) == "0o644"

    def fails(tmp):
        open(tmp, "w").write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(str(path), fails)
    assert path.read_text() == "one" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_atomic_directory_creates_and_replaces_whole(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(io, "_exchange", lambda a, b: False)  # as on a system without renameat2
    target = tmp_path / "parent" / "ck"  # the parent is made too
    with atomic_directory(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".saving-ck-") and not target.exists()
        (tmp / "a").write_text("1")
        (tmp / "old-only").write_text("1")
    assert _folder(target) == {"a": "1", "old-only": "1"} and oct(target.stat().st_mode & 0o777) == "0o755"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("2")
        assert _folder(target) == {"a": "1", "old-only": "1"}  # readers see the old folder until the end
    assert _folder(target) == {"a": "2"}  # replaced whole: no file of the old folder is left
    assert [p.name for p in target.parent.iterdir()] == ["ck"]


def test_atomic_directory_leaves_the_old_folder_intact_when_the_write_fails(tmp_path):
    target = tmp_path / "ck"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("good")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_directory(target) as tmp:
            (tmp / "a").write_text("half")
            raise RuntimeError("disk full")
    assert _folder(target) == {"a": "good"} and [p.name for p in tmp_path.iterdir()] == ["ck"]
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "new"):
            raise RuntimeError("nothing written")
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no half folder, no temporary one


def test_atomic_directory_without_replace_never_overwrites_or_follows_a_link(tmp_path):
    target = tmp_path / "ck"
    target.mkdir()
    (target / "theirs").write_text("x")
    with pytest.raises(OSError):
        with atomic_directory(target, replace=False) as tmp:
            (tmp / "mine").write_text("y")
    assert _folder(target) == {"theirs": "x"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, tmp_path / "link")
    with pytest.raises(OSError):
        with atomic_directory(tmp_path / "link", replace=False) as tmp:
            (tmp / "mine").write_text("y")
    assert list(elsewhere.iterdir()) == [] and (tmp_path / "link").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "elsewhere", "link"]


def test_replacing_through_a_link_keeps_the_link(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "a").write_text("1")
    os.symlink(real, tmp_path / "link")
    with atomic_directory(tmp_path / "link") as tmp:
        (tmp / "a").write_text("2")
    assert (tmp_path / "link").is_symlink() and _folder(real) == {"a": "2"}


def test_folders_left_by_a_dead_writer_are_cleaned_up_later(tmp_path):
    stale, fresh = tmp_path / ".saving-ck-dead", tmp_path / ".saving-ck-busy"
    stale.mkdir()
    fresh.mkdir()
    hour_ago = time.time() - io.STALE_SECONDS - 10
    os.utime(stale, (hour_ago, hour_ago))
    with atomic_directory(tmp_path / "ck") as tmp:
        (tmp / "a").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".saving-ck-busy", "ck"]  # another writer's is kept


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mtl.io import atomic_directory
    print("ready", flush=True)
    version = 1
    while True:  # each version writes two files with its number
        with atomic_directory(sys.argv[1]) as tmp:
            for name in ("a", "b"):
                (Path(tmp) / name).write_text(str(version))
        version += 1
    """
)


def test_sigkill_while_replacing_a_folder_never_loses_it(tmp_path):
    target = tmp_path / "ck"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("0")
        (tmp / "b").write_text("0")
    rng = random.Random(0)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    seen = set()
    for _ in range(10):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(target)], stdout=subprocess.PIPE, env=env, cwd=REPO)
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.3))
        child.send_signal(signal.SIGKILL)
        child.wait()
        files = _folder(target)  # always there, always whole: both files from one version
        assert set(files) == {"a", "b"} and files["a"] == files["b"]
        seen.add(files["a"])
    assert len(seen) > 3  # the kills really did land between different writes
