"""The ``pyscvibridge`` command line: integrate, map, convert, inspect, demo.

A thin layer: each command (one module each) parses its arguments, checks paths before any long
computation, calls the library (:func:`pyscvibridge._pipeline.run` for ``integrate`` and ``demo``)
and writes outputs atomically. A user error (a :class:`~pyscvibridge.PyscvibridgeError` or a bad
argument) ends with one line on stderr and exit status 1 (2 for usage errors), never a traceback.
"""

from __future__ import annotations

import os
import sys

from . import convert, demo, inspect, integrate, map  # noqa: F401 - each registers its command
from ._common import Settings, cli
from ._files import FAILED_H5_WRITES


def main(args: list[str] | None = None) -> int:
    """Console-script entry point (``pyscvibridge``): the exit status (see :mod:`._common`)."""
    code = cli.main(args=args, prog_name="pyscvibridge", standalone_mode=False)
    if FAILED_H5_WRITES:  # HDF5 would crash the process while freeing the failed write's objects
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


__all__ = ["Settings", "cli", "main"]
