"""The embedded R session: lazy start, the package's R helpers, small value conversions.

Everything here works on :mod:`rpy2.rinterface` objects (no implicit conversion), so what
crosses between R and Python is always explicit.
"""

from __future__ import annotations

import functools
from importlib.resources import files
from typing import Any

from .. import _signals
from .._atomic import claim_r_tempdir
from .._errors import PyscvibridgeError, import_or_hint
from .._libpython import own_libpython_first


@functools.cache
def ri():
    """:mod:`rpy2.rinterface`, with R started (once per process)."""
    import_or_hint("rpy2.robjects", "r")  # starts R, or says how to install rpy2
    import rpy2.rinterface as rinterface

    own_libpython_first()  # R's LD_LIBRARY_PATH must not hand child Pythons another libpython
    _signals.reinstall()  # rpy2 took SIGINT over when R started; the CLI's handlers come back
    claim_r_tempdir(rinterface.baseenv["tempdir"]()[0])  # so a later run can remove it if killed

    return rinterface


@functools.cache
def helpers():
    """An R environment holding the functions of ``_helpers.R`` (loaded once per process).

    Its parent is R's base environment, not the global one: names a user defines in R cannot
    shadow the functions it calls (packages are reached with ``pkg::``).
    """
    rinterface = ri()
    env = rinterface.baseenv["new.env"](parent=rinterface.baseenv)
    code = files(__package__).joinpath("_helpers.R").read_text()
    rinterface.baseenv["eval"](rinterface.parse(code), env)
    return env


def call(name: str, *args: Any, **kwargs: Any):
    """Call the R helper ``name`` with rinterface arguments; R errors become RRuntimeError."""
    return helpers()[name](*args, **kwargs)


def rfun(name: str, package: str | None = None):
    """An R function, ``package::name`` when a package is given (else from R's base package)."""
    rinterface = ri()
    if package is None:
        return rinterface.baseenv.find(name)
    return rinterface.baseenv["getExportedValue"](
        rinterface.StrSexpVector([package]), rinterface.StrSexpVector([name])
    )


def bind(env, name: str, value) -> None:
    """Bind ``value`` to ``name`` in the R environment ``env``, without copying it.

    rpy2's ``env[name] = value`` duplicates the value first: for a Seurat object or a
    SingleCellExperiment that is a deep copy of every matrix.
    """
    rinterface = ri()
    rinterface.baseenv["assign"](rinterface.StrSexpVector([name]), value, envir=env)


def has_package(package: str) -> bool:
    rinterface = ri()
    res = rinterface.baseenv["requireNamespace"](
        rinterface.StrSexpVector([package]), quietly=rinterface.BoolSexpVector([True])
    )
    return bool(res[0])


def require_package(package: str, purpose: str) -> None:
    if not has_package(package):
        msg = f"The R package {package!r} is needed {purpose} but is not installed in R's library; install it in R."
        raise PyscvibridgeError(msg)


def is_null(x) -> bool:
    return x is None or x.typeof == ri().RTYPES.NILSXP


def rclass(x) -> list[str]:
    return [str(c) for c in call(".pysb_class", x)]


_SEPS = ("\x1f", "\x1e", "\x1d", "\x1c", "\x01")
_BULK = 64  # shorter vectors go element by element


def strs(x) -> list[str]:
    """An R character vector (or NULL) as a list of str; NA becomes None."""
    if is_null(x):
        return []
    rinterface = ri()
    if len(x) >= _BULK:
        big, sep, na = call(".pysb_join", x)
        if not is_null(big):
            out = str(big[0]).split(str(sep[0]))[:-1]
            for i in na:
                out[int(i) - 1] = None
            return out
    na = rinterface.NA_Character
    if x.typeof != rinterface.RTYPES.STRSXP:
        x = rinterface.baseenv["as.character"](x)
    return [None if v is na else str(v) for v in x]


def r_str(values) -> Any:
    """A list of str (None for NA) as an R character vector (an R vector is passed through)."""
    rinterface = ri()
    if isinstance(values, rinterface.Sexp):
        return values
    values = list(values)
    if len(values) >= _BULK:
        na = [i + 1 for i, v in enumerate(values) if v is None]
        texts = ["" if v is None else str(v) for v in values]
        for sep in _SEPS:
            if not any(sep in t for t in texts):
                big = sep.join(texts) + sep
                return call(
                    ".pysb_split",
                    rinterface.StrSexpVector([big]),
                    rinterface.StrSexpVector([sep]),
                    rinterface.IntSexpVector([len(texts)]),
                    rinterface.IntSexpVector(na),
                )
    return rinterface.StrSexpVector([rinterface.NA_Character if v is None else str(v) for v in values])


def r_scalar(value) -> Any:
    rinterface = ri()
    if isinstance(value, bool):
        return rinterface.BoolSexpVector([value])
    if isinstance(value, int):
        return rinterface.IntSexpVector([value])
    if isinstance(value, float):
        return rinterface.FloatSexpVector([value])
    return rinterface.StrSexpVector([str(value)])


def named_list(items: dict[str, Any]):
    """A named R list from a dict of rinterface objects."""
    rinterface = ri()
    lst = rinterface.ListSexpVector(list(items.values()))
    lst.names = rinterface.StrSexpVector(list(items.keys()))
    return lst


def list_get(lst, name: str):
    """Element ``name`` of a named R list, or None when absent."""
    names = strs(lst.names) if not is_null(lst.names) else []
    if name not in names:
        return None
    return lst[names.index(name)]


def as_dict(lst) -> dict[str, Any]:
    """A named R list as a dict (names in order)."""
    if is_null(lst):
        return {}
    names = strs(lst.names) if not is_null(lst.names) else [str(i) for i in range(len(lst))]
    return {n: lst[i] for i, n in enumerate(names)}


def r_error_message(err: Exception) -> str:
    return str(err).strip()
