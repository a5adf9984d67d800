"""Reading ``.rds`` files without running code they carry, and without unpacking a bomb.

R before 4.4.0 (CVE-2024-27322) restores *promises* from a file: values computed by an R
expression the first time they are used. Reading the file runs nothing, but the first use of the
object (any slot or column access) runs the expression, which can be any command. Active bindings
(a function run whenever a variable in an environment is read) do the same.

:func:`read_checked` has the R package's compiled routine (``src/rds_safety.c``) unserialize the
file in C and walk the object graph by reading R's structures only, so nothing is forced. A file
holding a promise, an active binding, a closure, bytecode, a call (formulas excepted), an
expression or an external pointer is refused, unless ``trust=True``; Seurat objects and
SingleCellExperiments hold none of these.

The same routine counts the bytes it unpacks: ``.rds`` files are compressed, and a small file can
unpack to far more than the memory available (a 1.9 MB file to 2 GB). The limit is
``max(1 GiB, 100 x the file's size)`` unless ``max_bytes`` or the environment variable
``PYSCVIBRIDGE_RDS_MAX_BYTES`` sets another one; counting costs nothing beyond the read itself.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from .._errors import PyscvibridgeError
from . import _r
from ._manifest import logger

MAX_BYTES_ENV = "PYSCVIBRIDGE_RDS_MAX_BYTES"
MIN_LIMIT = 1 << 30  # the default limit is never below 1 GiB ...
MAX_RATIO = 100  # ... else 100 times the size of the file on disk
CVE = "CVE-2024-27322"
FIXED_IN = "4.4.0"


def size_limit(path: Path, max_bytes: int | None = None) -> int:
    """The largest number of bytes the file may unpack to (see the module's docstring)."""
    if max_bytes is None and os.environ.get(MAX_BYTES_ENV, "").strip():
        text = os.environ[MAX_BYTES_ENV].strip()
        try:
            max_bytes = int(float(text))
        except ValueError:
            msg = f"{MAX_BYTES_ENV}={text!r} is not a number of bytes; set it to e.g. 20000000000"
            raise PyscvibridgeError(msg) from None
    if max_bytes is not None:
        if max_bytes <= 0:
            msg = f"max_bytes must be a positive number of bytes, got {max_bytes!r}"
            raise PyscvibridgeError(msg)
        return int(max_bytes)
    return max(MIN_LIMIT, MAX_RATIO * path.stat().st_size)


@functools.cache
def _routine():
    """``pysb_read_rds_checked`` from the R package's shared library, or None when R cannot find it."""
    venv_lib = str(Path(sys.prefix) / "Rlib")  # where scripts/setup.sh installs the R package
    routine = _r.call(".pysb_native_routine", _r.r_str(["pysb_read_rds_checked"]), _r.r_str([venv_lib]))
    return None if _r.is_null(routine) else routine


def _r_version() -> str:
    rinterface = _r.ri()
    v = rinterface.baseenv["R.version"]
    parts = _r.as_dict(v)
    return f"{_r.strs(parts['major'])[0]}.{_r.strs(parts['minor'])[0]}"


def read_checked(
    path: Path, *, trust: bool = False, max_bytes: int | None = None, trust_hint: str = "trust=True"
):
    """Unserialize ``path`` and return the rpy2 object, refusing files that carry code.

    ``trust_hint`` is how the caller's user says "trust this file" (``--trust`` on the command line).
    Raises :class:`PyscvibridgeError` for refused, too large, corrupt or unreadable files.
    """
    rinterface = _r.ri()
    routine = _routine()
    if routine is None:
        if not trust:
            msg = (
                f"cannot check {str(path)!r} for R code before reading it: the R package 'pyscvibridge' "
                f"(its compiled part does the check) is neither in R's library nor in "
                f"{str(Path(sys.prefix) / 'Rlib')!r}. Install it with `R CMD INSTALL <the pyscvibridge "
                f"source folder>` (or scripts/setup.sh), or pass {trust_hint} if you trust the file."
            )
            raise PyscvibridgeError(msg)
        logger.warning(
            "reading %r without checking it for R code (trusted; the R package is not installed)", str(path)
        )
        return _r.call(".pysb_read_rds", _r.r_str([str(path)]))
    limit = size_limit(path, max_bytes)
    try:
        res = _r.call(
            ".pysb_read_rds_checked",
            routine,
            _r.r_str([str(path)]),
            rinterface.FloatSexpVector([float(limit)]),
            rinterface.BoolSexpVector([bool(trust)]),
        )
    except Exception as e:  # rpy2's RRuntimeError
        text = _r.r_error_message(e)
        if "larger than the limit" in text:
            msg = (
                f"{str(path)!r} unpacks to more than {limit:,} bytes ({path.stat().st_size:,} bytes on disk); "
                f"an .rds file this compressed can exhaust memory. If you expect an object this large, "
                f"raise the limit: max_bytes=... or the environment variable {MAX_BYTES_ENV}=<bytes>."
            )
            raise PyscvibridgeError(msg) from None
        msg = (
            f"cannot read {str(path)!r} as an .rds file: it is truncated, corrupt or not an .rds file "
            f"(R said: {text})"
        )
        raise PyscvibridgeError(msg) from e
    obj, found, n_found = res[0], _r.strs(res[1]), int(res[2][0])
    if n_found and trust:
        logger.warning(
            "%r holds %d object(s) that can run R code (e.g. a %s at %s); read anyway (trusted)",
            str(path),
            n_found,
            *found[0].split("\t", 1),
        )
    if n_found and not trust:
        kinds = sorted({f.split("\t", 1)[0] for f in found})
        where = "; ".join(" at ".join(f.split("\t", 1)) for f in found[:3])
        more = f" and {n_found - 3} more" if n_found > 3 else ""
        msg = (
            f"refusing to read {str(path)!r}: it holds {n_found} object(s) that would run R code when "
            f"the object is used ({', '.join(kinds)}): {where}{more}. A Seurat object or a "
            f"SingleCellExperiment holds none; R before {FIXED_IN} runs such code when the object is "
            f"touched ({CVE}; this R is {_r_version()}). Pass {trust_hint} only if you trust where the "
            f"file came from."
        )
        raise PyscvibridgeError(msg)
    return obj
