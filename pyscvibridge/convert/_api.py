"""Public entry points: from_r, read_rds, add_results (to_r / write_rds live in _write.py)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import PyscvibridgeError
from . import _r, _sparse
from ._manifest import logger

DEFAULT_SEURAT_REDUCTIONS = {"X_scVI": "scVI", "X_umap": "umap.scVI"}
DEFAULT_SCE_REDUCTIONS = {"X_scVI": "scVI", "X_umap": "UMAP_scVI"}


def _kind(obj) -> str:
    if not isinstance(obj, _r.ri().Sexp):
        msg = f"expected an R object (an rpy2 object), got {type(obj).__name__}; use read_rds() for a file"
        raise PyscvibridgeError(msg)
    cls = _r.rclass(obj)
    if "Seurat" in cls:
        return "Seurat"
    is_ = _r.ri().baseenv["inherits"]
    if bool(is_(obj, _r.r_str(["SingleCellExperiment"]))[0]):
        return "SingleCellExperiment"
    msg = (
        f"expected a Seurat object or a SingleCellExperiment, but the object is of class {cls!r}. "
        "Convert it in R first (e.g. as(x, 'SingleCellExperiment'))."
    )
    raise PyscvibridgeError(msg)


def layout(obj, *, assay: str | None = None) -> dict:
    """Where an R object keeps its matrices, without converting it.

    Returns ``{"kind": "Seurat" or "SingleCellExperiment", "assays": [...], "assay": the assay
    asked for (Seurat: default the active one), "layers": [...]}``: for Seurat the layers (v5) or
    non-empty slots (v4) of that assay, for SCE its assay names again.
    """
    kind = _kind(obj)
    if kind == "Seurat":
        summary = _r.as_dict(_r.call(".pysb_seurat_summary", obj))
        assays = _r.strs(summary["assays"])
        chosen = _r.strs(summary["active"])[0] if assay is None else assay
        layers = []
        if chosen in assays:
            layers = _r.strs(_r.call(".pysb_layer_names", _r.list_get(obj.do_slot("assays"), chosen)))
        return {"kind": kind, "assays": assays, "assay": chosen, "layers": layers}
    _r.require_package("SummarizedExperiment", "to read a SingleCellExperiment")
    names = _r.strs(_r.call(".pysb_sce_assay_names", obj))
    return {"kind": kind, "assays": names, "assay": assay, "layers": names}


def from_r(obj, *, assay: str | None = None, copy: bool = False):
    """Convert a Seurat (v4 or v5, joined or split layers) or SingleCellExperiment object to AnnData.

    Parameters
    ----------
    obj
        The R object, as an rpy2 object (e.g. ``rpy2.robjects.globalenv["obj"]``).
    assay
        Seurat: the assay to convert (default: the active one); the others are listed in the manifest.
        SingleCellExperiment: the assay to use as ``X`` (default: ``counts`` when present).
    copy
        Copy the matrices instead of viewing R's memory. Views are read-only; use ``copy=True``
        when you will modify the values in place.

    Returns
    -------
    An AnnData with raw counts in ``layers["counts"]`` and in ``X`` (the same matrix), normalised
    values (Seurat ``data`` / SCE ``logcounts``) in ``layers["logcounts"]``, metadata in ``obs`` and
    ``var``, reductions in ``obsm``, loadings in ``varm`` and the manifest in ``uns["conversion"]``.
    Split Seurat v5 layers are joined, in the object's cell order, with each cell's layer in
    ``obs["split_layer"]``.
    """
    kind = _kind(obj)
    if kind == "Seurat":
        from ._seurat import from_seurat

        adata, man = from_seurat(obj, assay=assay, copy=copy)
    else:
        from ._sce import from_sce

        adata, man = from_sce(obj, assay=assay, copy=copy)
    adata.uns["conversion"] = man.to_dict()
    man.log()
    return adata


def read_r_object(
    path: str | os.PathLike,
    *,
    trust: bool = False,
    max_bytes: int | None = None,
    trust_hint: str = "trust=True",
):
    """readRDS(path) with clear errors, refusing files that carry R code; returns the rpy2 object.

    The file is checked before anything in it is used (see :mod:`._safety`): promises, active
    bindings, closures, calls and external pointers are refused unless ``trust=True``, and it may
    unpack to at most ``max_bytes`` (default ``max(1 GiB, 100 x its size on disk)``).
    """
    from ._safety import read_checked

    path = Path(path)
    if not path.is_file():
        msg = f"no such file: {str(path)!r}"
        raise PyscvibridgeError(msg)
    if path.stat().st_size == 0:
        msg = f"{str(path)!r} is empty; it is not an .rds file"
        raise PyscvibridgeError(msg)
    return read_checked(path, trust=trust, max_bytes=max_bytes, trust_hint=trust_hint)


def save_rds(obj, path: str | os.PathLike) -> None:
    """saveRDS(obj, path): write the R object ``obj`` (e.g. from :func:`add_results`) to an ``.rds`` file."""
    _r.call(".pysb_save_rds", obj, _r.r_str([str(path)]))


def read_rds(
    path: str | os.PathLike,
    *,
    assay: str | None = None,
    copy: bool = False,
    trust: bool = False,
    max_bytes: int | None = None,
):
    """Read an ``.rds`` file holding a Seurat object or a SingleCellExperiment into AnnData.

    See :func:`from_r` for what goes where. The AnnData's matrices view the R object's memory;
    the R object stays alive (in R's memory) as long as they do.

    Files are checked before any part of them is used: one that holds R code (a promise, an
    active binding, a closure, a call, an external pointer) is refused, since R before 4.4.0 runs
    such code when the object is touched (CVE-2024-27322). Pass ``trust=True`` only for files
    whose origin you trust. ``max_bytes`` bounds the uncompressed size (default
    ``max(1 GiB, 100 x the file's size)``, or the environment variable
    ``PYSCVIBRIDGE_RDS_MAX_BYTES``).
    """
    obj = read_r_object(path, trust=trust, max_bytes=max_bytes)
    try:
        _kind(obj)
    except PyscvibridgeError as e:
        msg = f"{str(path)!r} holds neither a Seurat object nor a SingleCellExperiment: {e}"
        raise PyscvibridgeError(msg) from None
    adata = from_r(obj, assay=assay, copy=copy)
    adata.uns["conversion"]["details"]["file"] = str(path)
    return adata


# ---------------------------------------------------------------- results back to R


def reduction_key(name: str) -> str:
    """A Seurat DimReduc key for ``name``: letters and digits only, then ``_`` ("umap.scVI" -> "umapscVI_")."""
    key = re.sub(r"[^a-zA-Z0-9]", "", name)
    if not key or not key[0].isalpha():
        key = "X" + key
    return key + "_"


def _cell_order(obj_cells: list[str], adata, where: str) -> np.ndarray:
    """Positions of the object's cells in adata (error unless the same set)."""
    names = pd.Index(adata.obs_names)
    if names.has_duplicates:
        msg = "adata has duplicated cell names (obs_names); they must match the R object's cells one to one"
        raise PyscvibridgeError(msg)
    idx = names.get_indexer(obj_cells)
    extra = names.difference(pd.Index(obj_cells))
    if (idx < 0).any() or len(extra):
        missing = [c for c, i in zip(obj_cells, idx, strict=True) if i < 0][:5]
        msg = (
            f"the cells of adata and of the {where} differ: {int((idx < 0).sum())} of the object's cells are "
            f"not in adata (e.g. {missing!r}) and {len(extra)} cells of adata are not in the object "
            f"(e.g. {list(extra[:5])!r}). Use the AnnData converted from this object."
        )
        raise PyscvibridgeError(msg)
    return idx


def assign(name: str, obj, *, envir=None) -> None:
    """Bind the R object ``obj`` to ``name`` in R's global environment (or ``envir``), without a copy.

    rpy2's ``robjects.globalenv[name] = obj`` (and ``%%R -i``) duplicates the object first, which
    for a Seurat object or a SingleCellExperiment copies every matrix. Use this to hand the
    results of :func:`add_results` or :func:`to_r` to R code, e.g. to ``%%R`` cells.
    """
    _r.bind(_r.ri().globalenv if envir is None else envir, name, obj)


def add_results(
    obj,
    adata,
    *,
    reductions: Mapping[str, str] | None = None,
    assay: str | None = None,
    misc: Mapping | None = None,
    misc_key: str = "scVI",
    obs_columns: Sequence[str] | None = None,
    expression: str | None = None,
    expression_name: str = "scVI",
):
    """Return a copy of the R object ``obj`` with embeddings from ``adata`` added; no matrix is copied back.

    Parameters
    ----------
    obj
        The Seurat object (v4 or v5, under SeuratObject 4 or 5) or SingleCellExperiment (rpy2 object).
    adata
        An AnnData over the same cells (matched by name; the order may differ).
    reductions
        ``{obsm key: reduction name}``. Default for Seurat ``{"X_scVI": "scVI", "X_umap": "umap.scVI"}``
        (DimReduc keys ``scVI_``, ``umapscVI_``), for SCE ``{"X_scVI": "scVI", "X_umap": "UMAP_scVI"}``
        (reducedDims). With the default, keys missing from ``adata.obsm`` are skipped.
    assay
        Seurat: the ``assay.used`` of the new reductions (default: the active assay).
    misc
        Nested dict of plain values (str, numbers, bools, lists, arrays) stored as
        ``obj@misc[[misc_key]]`` (Seurat) or ``metadata(sce)[[misc_key]]`` (SCE).
    obs_columns
        Names of ``adata.obs`` columns to add to the cell metadata (``meta.data`` / ``colData``),
        in the object's cell order; categoricals become factors with the same levels. A column of
        that name already there is replaced; the other columns are left as they are.
    expression
        An ``adata.obsm`` key holding a cells x genes :class:`pandas.DataFrame` (e.g. from
        :func:`pyscvibridge.corrected_expression`). Seurat: added as the assay ``expression_name``
        (``CreateAssayObject(data = )``: features x cells in the data slot); SCE: as the altExp
        ``expression_name``, a SummarizedExperiment with the assay ``"normalized"``. Genes keep their names.
    expression_name
        Name of that assay / altExp.

    Returns
    -------
    A new R object; ``obj`` itself is not modified, and everything else in it is unchanged.
    """
    rinterface = _r.ri()
    kind = _kind(obj)
    defaults = reductions is None
    if reductions is None:
        reductions = DEFAULT_SEURAT_REDUCTIONS if kind == "Seurat" else DEFAULT_SCE_REDUCTIONS
    todo = {}
    for key, name in reductions.items():
        if key not in adata.obsm:
            if defaults:
                continue
            msg = f"adata.obsm has no {key!r} (it has {sorted(adata.obsm)!r})"
            raise PyscvibridgeError(msg)
        todo[key] = name
    obs_columns = list(obs_columns or [])
    if missing := [c for c in obs_columns if c not in adata.obs.columns]:
        msg = f"adata.obs has no column {missing[0]!r} (it has {list(adata.obs.columns)!r})"
        raise PyscvibridgeError(msg)
    if expression is not None and not isinstance(adata.obsm.get(expression), pd.DataFrame):
        msg = f"adata.obsm[{expression!r}] must be a cells x genes DataFrame (it has {sorted(adata.obsm)!r})"
        raise PyscvibridgeError(msg)
    if not todo and misc is None and not obs_columns and expression is None:
        msg = f"nothing to add: adata.obsm has none of {sorted(reductions)!r} and no misc was given"
        raise PyscvibridgeError(msg)

    if kind == "Seurat":
        summary = _r.as_dict(_r.call(".pysb_seurat_summary", obj))
        cells = _r.strs(summary["cells"])
        assays = _r.strs(summary["assays"])
        assay = _r.strs(summary["active"])[0] if assay is None else assay
        if assay not in assays:
            msg = f"assay {assay!r} is not in this Seurat object; it has {assays!r}"
            raise PyscvibridgeError(msg)
    else:
        cells = _r.strs(rinterface.baseenv["colnames"](obj))
        if not cells:  # an SCE without column names: from_r() named the cells '0'..'n-1'
            cells = [str(i) for i in range(int(rinterface.baseenv["ncol"](obj)[0]))]
    order = _cell_order(cells, adata, f"{kind} object")
    has_colnames = kind == "Seurat" or not _r.is_null(rinterface.baseenv["colnames"](obj))

    out = obj
    for key, name in todo.items():
        emb = np.asarray(adata.obsm[key])
        if emb.ndim != 2:
            msg = f"adata.obsm[{key!r}] must be a 2-d array (got shape {emb.shape})"
            raise PyscvibridgeError(msg)
        emb = emb[order]
        if kind == "Seurat":
            rkey = reduction_key(name)
            rmat = _sparse.r_matrix(
                emb, rownames=cells, colnames=[f"{rkey}{i + 1}" for i in range(emb.shape[1])]
            )
            out = _r.call(
                ".pysb_add_reduction_seurat", out, _r.r_str([name]), rmat, _r.r_str([rkey]), _r.r_str([assay])
            )
            logger.info("added reduction %r (key %r, assay %r) from .obsm[%r]", name, rkey, assay, key)
        else:
            rmat = _sparse.r_matrix(
                emb,
                rownames=cells if has_colnames else None,
                colnames=[f"{name}_{i + 1}" for i in range(emb.shape[1])],
            )
            out = _r.call(".pysb_add_reduction_sce", out, _r.r_str([name]), rmat)
            logger.info("added reducedDim %r from .obsm[%r]", name, key)
    if obs_columns:
        from ._frames import pandas_to_r_data_frame

        frame = adata.obs[obs_columns].iloc[order]
        rdf = pandas_to_r_data_frame(frame, row_names=_r.r_str(cells))
        fn = ".pysb_add_obs_seurat" if kind == "Seurat" else ".pysb_add_obs_sce"
        out = _r.call(fn, out, rdf)
        logger.info("added cell-metadata column(s) %s", ", ".join(repr(c) for c in obs_columns))
    if expression is not None:
        table = adata.obsm[expression]
        values = table.to_numpy()[order].T  # features x cells, a view; r_matrix makes the one copy
        rmat = _sparse.r_matrix(
            values, rownames=[str(g) for g in table.columns], colnames=cells if has_colnames else None
        )
        if kind == "Seurat":
            out = _r.call(".pysb_add_assay_seurat", out, _r.r_str([expression_name]), rmat)
            logger.info(
                "added assay %r (%d features) from .obsm[%r]", expression_name, values.shape[0], expression
            )
        else:
            out = _r.call(".pysb_add_altexp_sce", out, _r.r_str([expression_name]), rmat)
            logger.info(
                "added altExp %r (%d features) from .obsm[%r]", expression_name, values.shape[0], expression
            )
    if misc is not None:
        from ._values import to_r_value

        value = to_r_value(misc, "misc")
        fn = ".pysb_set_misc_seurat" if kind == "Seurat" else ".pysb_set_misc_sce"
        out = _r.call(fn, out, _r.r_str([misc_key]), value)
        logger.info("added %s[[%r]]", "@misc" if kind == "Seurat" else "metadata()", misc_key)
    return out
