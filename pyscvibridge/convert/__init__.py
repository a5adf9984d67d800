"""R <-> AnnData conversion: Seurat v4/v5 and SingleCellExperiment objects, with a manifest.

- :func:`layout`: an R object's kind, assays and layers, without converting it.
- :func:`read_r_object` / :func:`save_rds`: ``readRDS()`` / ``saveRDS()`` of an R object (rpy2).
- :func:`from_r` / :func:`read_rds`: an R object (in the R session, or in an ``.rds`` file) -> AnnData.
  Sparse counts are viewed in R's memory, not copied.
- :func:`to_r` / :func:`write_rds`: AnnData -> a Seurat object or a SingleCellExperiment.
- :func:`add_results`: embeddings (and a ``misc`` record) from an AnnData added to the R object
  it came from, without copying its matrices back.
- :func:`make_converter`: an rpy2 converter (anndata2ri's, with these rules first) for
  ``localconverter(...)`` and ``%%R -c``; ``pyscvibridge.converter`` is the default one.
- :func:`assign`: bind an R object to a name in R without the copy rpy2's
  ``globalenv[name] = obj`` makes.

Conventions (details in the private modules' docstrings):

- ``X`` is the raw counts, the same matrix object as ``layers["counts"]``; Seurat ``data`` /
  SCE ``logcounts`` go to ``layers["logcounts"]``. R -> AnnData matrices are read-only views of
  R's memory (``copy=True`` for writable copies); they keep the R vectors alive.
- Split Seurat v5 layers (``counts.<x>``) become one AnnData in the object's cell order, with
  each cell's layer suffix in ``obs["split_layer"]`` (:data:`SPLIT_COLUMN`).
- Every conversion is recorded in a manifest (:class:`Manifest`; ``uns["conversion"]`` for
  R -> AnnData, ``to_r(..., return_manifest=True)`` the other way), logged at INFO on the
  ``pyscvibridge.convert`` logger: ``mapped`` (destination -> source), ``renamed``, ``dropped``
  (what -> why), ``details`` and ``notes``.
- Seurat feature names cannot hold ``_`` or ``|``: :func:`to_r` replaces them with ``-``,
  reports each rename and keeps the originals in the feature metadata column
  ``original_feature_name`` (:data:`ORIGINAL_NAME_COLUMN`), from which :func:`from_r` restores them.

rpy2 is imported when one of these is called, not when this module is imported
(``pip install 'pyscvibridge[r]'``).
"""

from __future__ import annotations

from ._api import add_results, assign, from_r, layout, read_r_object, read_rds, reduction_key, save_rds
from ._converter import make_converter
from ._manifest import Manifest
from ._seurat import ORIGINAL_NAME_COLUMN, SPLIT_COLUMN
from ._write import to_r, write_rds

__all__ = [
    "ORIGINAL_NAME_COLUMN",
    "SPLIT_COLUMN",
    "Manifest",
    "add_results",
    "assign",
    "from_r",
    "layout",
    "make_converter",
    "read_r_object",
    "read_rds",
    "reduction_key",
    "save_rds",
    "to_r",
    "write_rds",
]
