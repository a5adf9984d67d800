"""The package's one exception type (the CLI turns it into a clean exit)."""

from __future__ import annotations


class PyscvibridgeError(ValueError):
    """A problem with the user's input or environment, with a message that says how to fix it."""


class MissingDependencyError(PyscvibridgeError, ImportError):
    """An optional dependency (rpy2, scib-metrics, ...) is not installed."""


def import_or_hint(module: str, extra: str):
    """Import ``module``, or raise a :class:`MissingDependencyError` naming the pip extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        msg = (
            f"{module!r} is needed here but cannot be imported ({e}). "
            f"Install it with: pip install 'pyscvibridge[{extra}]'"
        )
        raise MissingDependencyError(msg) from e
