"""pyscvibridge: scVI batch integration for Seurat / SingleCellExperiment objects and AnnData.

Heavy dependencies (torch, scvi-tools, scanpy, rpy2) are imported inside the functions that need
them, so ``import pyscvibridge`` stays fast.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import datasets
from ._errors import MissingDependencyError, PyscvibridgeError
from ._training import default_max_epochs
from ._workflow import integrate

try:
    __version__ = version("pyscvibridge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "MissingDependencyError",
    "PyscvibridgeError",
    "__version__",
    "datasets",
    "default_max_epochs",
    "integrate",
]
