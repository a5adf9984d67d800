"""pyscvibridge: scVI batch integration for Seurat / SingleCellExperiment objects and AnnData.

Heavy dependencies (torch, scvi-tools, scanpy, rpy2) are imported inside the functions that need
them, so ``import pyscvibridge`` stays fast.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import datasets
from ._errors import MissingDependencyError, PyscvibridgeError
from ._expression import corrected_expression
from ._query import align_genes, map_query, save_model, transfer_labels
from ._scanvi import train_scanvi
from ._training import default_max_epochs
from ._workflow import integrate


def __getattr__(name: str):
    # `pyscvibridge.convert` loads pandas, scipy and (when used) rpy2: import it on first access only.
    if name == "convert":
        import importlib

        return importlib.import_module(".convert", __name__)
    # The rpy2 converter for %%R -c / localconverter. Not in __all__: building it starts R (rpy2),
    # which `from pyscvibridge import *` must not do.
    if name == "converter":
        from .convert._converter import default_converter

        return default_converter()
    msg = f"module 'pyscvibridge' has no attribute {name!r}"
    raise AttributeError(msg)


try:
    __version__ = version("pyscvibridge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "MissingDependencyError",
    "PyscvibridgeError",
    "__version__",
    "align_genes",
    "convert",
    "corrected_expression",
    "datasets",
    "default_max_epochs",
    "integrate",
    "map_query",
    "save_model",
    "train_scanvi",
    "transfer_labels",
]
