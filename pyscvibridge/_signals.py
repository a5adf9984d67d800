"""SIGINT (Ctrl-C) and SIGTERM end a command-line run cleanly: one line, exit 128 + the signal, no temporaries.

Python's default SIGTERM kills the process at once (temporary files stay behind) and libraries turn
both signals into other things: Lightning catches ``KeyboardInterrupt`` and exits 1, raises its
``SIGTERMException`` (a ``SystemExit``, status 0) on SIGTERM, scvi-tools prints and re-raises; h5py
prints and drops an exception raised inside its write callbacks, so the write goes on. Inside
:func:`handling` (the CLI runs every command in it) a signal is therefore both raised, as
:class:`Interrupted` where Python next runs, and recorded: whatever a library makes of the exception,
:func:`check` raises it again, :func:`pyscvibridge._atomic.atomic_path` calls it before it renames a
finished file into place, and the CLI exits with :func:`received`'s code. Outside :func:`handling`
(a notebook, R) nothing changes.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: list[int] = []
_active: list[bool] = []


class Interrupted(BaseException):
    """Raised when SIGINT or SIGTERM arrives (a BaseException, so ``except Exception`` lets it pass)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process that a signal ended (130, 143)."""
        return 128 + self.signum

    def __str__(self) -> str:
        how = " (Ctrl-C)" if self.signum == signal.SIGINT else ""
        return f"interrupted by {self.name}{how}; files being written were removed."


def received() -> Interrupted | None:
    """The first signal received inside :func:`handling`, as an :class:`Interrupted`, else None."""
    return Interrupted(_received[0]) if _received else None


def check() -> None:
    """Inside :func:`handling`: raise :class:`Interrupted` if a signal arrived (even if a library
    swallowed the first raise)."""
    if _active and (signal_ := received()) is not None:
        raise signal_


def _handler(signum, frame) -> None:
    first = not _received
    _received.append(signum)
    if first:  # a second Ctrl-C while files are removed is only recorded, so the clean-up finishes
        raise Interrupted(signum)


def reinstall() -> None:
    """Put the handlers back if something replaced them (rpy2 sets SIGINT's when R starts)."""
    if _active and threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _handler)


def _quiet_unraisable(hook):
    """``sys.unraisablehook`` that drops :class:`Interrupted`: a library (h5py's write callbacks, a
    ``__del__``) that cannot raise it prints "Exception ignored ..." with a traceback, but the signal is
    recorded and :func:`check` raises it again, so the user sees the one line and nothing else."""

    def quiet(unraisable) -> None:
        if not isinstance(unraisable.exc_value, Interrupted):
            hook(unraisable)

    return quiet


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """Within: SIGINT and SIGTERM raise :class:`Interrupted` and are recorded (see the module)."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    saved = {signum: signal.getsignal(signum) for signum in SIGNALS}
    saved_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_unraisable(saved_hook)
    _received.clear()
    _active.append(True)
    try:
        reinstall()
        yield
    finally:
        _active.pop()
        sys.unraisablehook = saved_hook
        for signum, old in saved.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
