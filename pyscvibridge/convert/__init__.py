"""R <-> AnnData conversion: Seurat v4/v5 and SingleCellExperiment objects, with a manifest.

- :func:`from_r` / :func:`read_rds`: an R object (in the R session, or in an ``.rds`` file) -> AnnData.
  Sparse counts are viewed in R's memory, not copied.
- :func:`to_r` / :func:`write_rds`: AnnData -> a Seurat object or a SingleCellExperiment.
- :func:`add_results`: embeddings (and a ``misc`` record) from an AnnData added to the R object
  it came from, without copying its matrices back.

rpy2 is imported when one of these is called, not when this module is imported
(``pip install 'pyscvibridge[r]'``).
"""

from __future__ import annotations

from ._api import add_results, from_r, read_rds, reduction_key
from ._manifest import Manifest
from ._seurat import ORIGINAL_NAME_COLUMN, SPLIT_COLUMN
from ._write import to_r, write_rds

__all__ = [
    "ORIGINAL_NAME_COLUMN",
    "SPLIT_COLUMN",
    "Manifest",
    "add_results",
    "from_r",
    "read_rds",
    "reduction_key",
    "to_r",
    "write_rds",
]
