"""Atomic file output: write to a temporary file in the target's directory, then rename over it.

A reader never sees a partial file, and a failed or interrupted write leaves nothing behind. A
process killed outright (``kill -9``, a crash) cannot remove its temporary file, so the name says
whose it is: ``.<name>.psb-<host>-<pid>-<random>.tmp<suffix>``. The next write into that directory
removes such files whose process is gone on this host (the only ones it can prove are stale). R's
session directory (``Rtmp*``) gets a note of the process that owns it (:func:`claim_r_tempdir`) for
the same reason, and :func:`remove_stale_r_tempdirs` removes those of processes that are gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from . import _signals
from ._errors import PyscvibridgeError

logger = logging.getLogger("pyscvibridge")

_TMP = re.compile(r"^\..+\.psb-(?P<host>[A-Za-z0-9]*)-(?P<pid>[0-9]+)-[a-z0-9_]+\.tmp(\.[^.]*)?$")
R_OWNER = ".pyscvibridge-owner"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:24]


def temporary_name_prefix(path: Path) -> str:
    """The start of the temporary file names for ``path`` written by this process."""
    return f".{path.name}.psb-{_host()}-{os.getpid()}-"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, mkdir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``, on failure remove it.

    The temporary name keeps ``path``'s suffix, so writers that choose a format by extension work.
    Stale temporary files of killed runs in that directory are removed first (see the module).
    A signal received while writing (see :mod:`pyscvibridge._signals`) removes the file instead of
    renaming it, even if a library swallowed the signal's exception.
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent)
    tmp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(
            dir=path.parent, prefix=temporary_name_prefix(path), suffix=f".tmp{path.suffix}"
        )
        tmp = Path(name)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the usual permissions
        yield tmp
        _signals.check()
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: a process of another user has that pid
        return True
    return True


def remove_stale(directory: str | os.PathLike) -> list[Path]:
    """Remove this package's temporary files in ``directory`` whose process (on this host) is gone."""
    removed = []
    host = _host()
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            m = _TMP.match(entry.name)
            if m is None or m["host"] != host or _alive(int(m["pid"])):
                continue
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
                    logger.info("removed %s, left by process %s that is gone", entry.path, m["pid"])
    return removed


def claim_r_tempdir(tempdir: str | os.PathLike) -> None:
    """Note in R's session directory that this process owns it (see :func:`remove_stale_r_tempdirs`)."""
    with contextlib.suppress(OSError):
        Path(tempdir, R_OWNER).write_text(f"{_host()} {os.getpid()}\n")


def remove_stale_r_tempdirs() -> list[Path]:
    """Remove ``Rtmp*`` directories claimed by a pyscvibridge process on this host that is gone.

    Only directories holding the note :func:`claim_r_tempdir` writes are touched: other R
    sessions' directories are not this package's to remove.
    """
    roots = {os.environ.get(v) for v in ("TMPDIR", "TMP", "TEMP")} | {"/tmp"}  # where R makes them
    removed = []
    host = _host()
    for root in filter(None, roots):
        for owner in Path(root).glob(f"Rtmp*/{R_OWNER}"):
            with contextlib.suppress(OSError, ValueError):
                who_host, pid = owner.read_text().split()
                if who_host == host and not _alive(int(pid)):
                    shutil.rmtree(owner.parent)
                    removed.append(owner.parent)
                    logger.info("removed %s, R's directory of process %s that is gone", owner.parent, pid)
    return removed


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
