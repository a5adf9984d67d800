"""The ``pyscvibridge`` command line: integrate, map, convert, inspect, demo.

A thin layer: each command (one module each) parses its arguments, checks paths before any long
computation, calls the library (:func:`pyscvibridge._pipeline.run` for ``integrate`` and ``demo``)
and writes outputs atomically. A user error (a :class:`~pyscvibridge.PyscvibridgeError` or a bad
argument) ends with one line on stderr and exit status 1 (2 for usage errors), never a traceback.
"""

from __future__ import annotations

from . import convert, demo, inspect, integrate, map  # noqa: F401 - each registers its command
from ._common import Settings, cli


def main(args: list[str] | None = None) -> int:
    """Console-script entry point (``pyscvibridge``)."""
    return cli.main(args=args, prog_name="pyscvibridge")


__all__ = ["Settings", "cli", "main"]
