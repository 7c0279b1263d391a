"""Hashing and atomic writes: a file or a whole folder appears complete or not at all.

Used by checkpoints (mtl/checkpoint.py), the training loop's saves, export, the CLI and the app, so that a
crash or an error mid-write never leaves a half-written file or folder under the real name."""

import contextlib
import ctypes
import errno
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_sha256(module: torch.nn.Module) -> str:
    """sha256 over parameter names, shapes and bytes: identifies base weights whatever the file."""
    h = hashlib.sha256()
    for name, p in sorted(module.state_dict().items()):
        t = p.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def write_atomic(path, write_fn) -> None:
    """write_fn(tmp_path) writes a file beside `path`; it is synced to disk, then renamed over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; what we write is meant to be shared
    try:
        write_fn(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


STALE_SECONDS = 3600  # a folder still being written after an hour was left by a process that died


@contextlib.contextmanager
def atomic_directory(target, replace: bool = True):
    """Yields a new, empty, hidden folder beside `target` (`.saving-<name>-*`) to write into. When the block
    ends without an error the folder takes `target`'s place in one step; on an error it is removed and `target`
    is left exactly as it was.

    replace=True: an existing `target` is swapped out atomically (Linux renameat2; elsewhere two renames), so
    a reader sees the old folder or the new one, never neither; a link named `target` keeps pointing to the
    new folder. replace=False: an existing non-empty `target` (or a link) makes it fail with an OSError."""
    target = Path(target)
    if replace and target.is_symlink():
        target = target.resolve()
    if not target.parent.exists():
        target.parent.mkdir(parents=True)
    _remove_stale(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".saving-{target.name}-"))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; saved models are meant to be shared
        yield tmp
        if replace and target.exists():
            _swap(tmp, target)  # tmp now holds the old folder, removed below
        else:
            os.rename(tmp, target)  # fails on a non-empty folder or a link: never overwrites, never follows
    finally:
        if tmp.exists() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale(target: Path) -> None:
    for old in target.parent.glob(f".saving-{target.name}-*"):
        try:
            if not old.is_symlink() and old.is_dir() and time.time() - old.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass


def _swap(new: Path, old: Path) -> None:
    """`new` takes the place of `old`, and what was at `old` is left at `new`."""
    if _exchange(new, old):
        return
    aside = Path(tempfile.mkdtemp(dir=old.parent, prefix=f".saving-{old.name}-"))
    os.rename(old, aside)  # onto the empty folder just made
    try:
        os.rename(new, old)
    except OSError:
        os.rename(aside, old)
        raise
    os.rename(aside, new)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one system call (Linux renameat2 with RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # a C library older than glibc 2.28
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):  # old kernel, or a filesystem without it
        return False
    raise OSError(code, os.strerror(code), str(b))
