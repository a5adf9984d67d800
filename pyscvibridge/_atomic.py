"""Atomic file output: write to a temporary file in the target's directory, then rename over it.

A reader never sees a partial file, and a failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ._errors import PyscvibridgeError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, mkdir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``, on failure remove it.

    The temporary name keeps ``path``'s suffix, so writers that choose a format by extension work.
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_writable_dir(directory: str | os.PathLike, what: str = "output directory") -> Path:
    """Raise a clear error unless files can be created in ``directory`` (or, if missing, its nearest parent).

    Tries to create a file there, which is the only test that also holds for root and read-only mounts.
    """
    directory = Path(directory).absolute()
    existing = directory
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        msg = f"Cannot write to {what} {str(directory)!r}: {str(existing)!r} is not a directory."
        raise PyscvibridgeError(msg)
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".pyscvibridge-write-test.")
    except OSError as e:
        msg = f"Cannot write to {what} {str(directory)!r}: {e.strerror or e}. Choose a writable directory."
        raise PyscvibridgeError(msg) from None
    os.close(fd)
    os.unlink(probe)
    return directory
