"""AnnData -> Seurat object or SingleCellExperiment, and ``.rds`` files.

Seurat (made with the installed SeuratObject: a v4 ``Assay`` under SeuratObject 4, an ``Assay5``
under SeuratObject 5):

- ``layers["counts"]`` (else ``X``) -> counts; ``layers["logcounts"]`` -> data; other layers are
  reported, not converted;
- ``obs`` -> meta.data (columns, types, levels and NA as in :mod:`._frames`; Seurat's
  ``orig.ident`` / ``nCount_*`` / ``nFeature_*`` are added only when ``obs`` lacks them);
- ``var`` -> the assay's feature metadata; ``var["highly_variable"]`` -> VariableFeatures;
- ``obsm["X_<name>"]`` -> reduction ``<name>`` (key and loadings restored from
  ``uns["seurat"]`` when the AnnData came from Seurat);
- feature names: Seurat does not allow ``_`` or ``|`` in them, so they become ``-``; every rename
  is reported and the original names are kept in the feature metadata column
  ``original_feature_name``, from which :func:`from_r` restores them.

SingleCellExperiment: layers -> assays (``X`` too, as assay ``X``, unless it is one of the layers),
obs -> colData, var -> rowData, obsm -> reducedDims (``X_pca`` -> ``PCA``; names kept from
``uns["sce"]``), ``varm["PCs"]`` -> ``attr(reducedDim(sce, "PCA"), "rotation")``, uns -> metadata.

Matrices are copied once, straight into newly allocated R vectors.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse

from .._errors import PyscvibridgeError
from . import _frames, _r, _sparse
from ._api import reduction_key
from ._manifest import Manifest
from ._sce import RESERVED_UNS, sce_name
from ._seurat import ORIGINAL_NAME_COLUMN

Kind = Literal["Seurat", "SingleCellExperiment"]


def _same_matrix(a, b) -> bool:
    if a is b:
        return True
    if a.shape != b.shape or sparse.issparse(a) != sparse.issparse(b):
        return False
    if sparse.issparse(a):
        a, b = a.tocsr(), b.tocsr()
        return a.nnz == b.nnz and (a != b).nnz == 0
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def _column_classes(adata, part: str) -> dict[str, str]:
    """``{column: R class}`` of ``obs`` or ``var`` as recorded when the AnnData came from R."""
    conversion = adata.uns.get("conversion")
    if not isinstance(conversion, Mapping) or conversion.get("direction") != "R -> AnnData":
        return {}
    classes = conversion.get("column_classes", {})
    classes = classes.get(part, {}) if isinstance(classes, Mapping) else {}
    return {str(k): str(v) for k, v in classes.items()} if isinstance(classes, Mapping) else {}


def _check_names(adata) -> None:
    for what, names in (("cell (obs_names)", adata.obs_names), ("feature (var_names)", adata.var_names)):
        if names.has_duplicates:
            dups = sorted(set(names[names.duplicated()]))[:5]
            msg = f"duplicated {what} names (e.g. {dups!r}); call adata.obs_names_make_unique() / var_names_make_unique()"
            raise PyscvibridgeError(msg)


def _seurat_feature_names(names: list[str], man: Manifest) -> list[str]:
    new = [n.replace("_", "-").replace("|", "-") for n in names]
    changed = {o: n for o, n in zip(names, new, strict=True) if o != n}
    if len(set(new)) != len(new):
        s = pd.Index(new)
        dups = sorted(set(s[s.duplicated()]))[:5]
        msg = (
            f"Seurat replaces '_' and '|' in feature names with '-', which makes some names collide "
            f"(e.g. {dups!r}); rename those features first."
        )
        raise PyscvibridgeError(msg)
    for o, n in changed.items():
        man.rename("features", o, n)
    if changed:
        man.note(
            f"{len(changed)} feature names changed for Seurat; originals kept in {ORIGINAL_NAME_COLUMN!r}"
        )
    return new


def _seurat(adata, assay: str, man: Manifest):
    rinterface = _r.ri()
    _r.require_package("SeuratObject", "to build a Seurat object")
    cells = [str(c) for c in adata.obs_names]
    orig_features = [str(f) for f in adata.var_names]
    features = _seurat_feature_names(orig_features, man)

    if "counts" in adata.layers:
        counts_py, src = adata.layers["counts"], "layers['counts']"
    else:
        counts_py, src = adata.X, "X"
        man.note("no layers['counts']: X used as counts")
    if counts_py is None:
        msg = "adata has neither layers['counts'] nor X; there are no counts to convert"
        raise PyscvibridgeError(msg)
    r_cells, r_features = _r.r_str(cells), _r.r_str(features)
    counts = _sparse.csr_to_dgc(counts_py, r_features, r_cells)
    man.map(f"{assay} counts", src)
    data = rinterface.NULL
    if "logcounts" in adata.layers:
        data = _sparse.csr_to_dgc(adata.layers["logcounts"], r_features, r_cells)
        man.map(f"{assay} data", "layers['logcounts']")
    for name in adata.layers:
        if name not in ("counts", "logcounts"):
            man.drop(f"layers[{name!r}]", "Seurat assays hold counts and data only")
    if adata.X is not None and src != "X" and not _same_matrix(adata.X, counts_py):
        if "logcounts" in adata.layers and _same_matrix(adata.X, adata.layers["logcounts"]):
            man.note("X equals layers['logcounts'] (converted as data)")
        else:
            man.drop("X", "differs from layers['counts'] and layers['logcounts']; put it in one of them")

    seurat_uns = adata.uns.get("seurat", {}) if isinstance(adata.uns.get("seurat", {}), dict) else {}
    obs = adata.obs.copy()
    ident_col = seurat_uns.get("ident_column")
    idents = rinterface.NULL
    if ident_col in obs.columns and isinstance(obs[ident_col].dtype, pd.CategoricalDtype):
        idents = _frames.column_to_r(obs[ident_col])
        man.map("active.ident", f"obs[{ident_col!r}]")
        if ident_col == "seurat_ident":
            obs = obs.drop(columns=[ident_col])
    meta = _frames.pandas_to_r_data_frame(obs, r_cells, _column_classes(adata, "obs"))
    man.map("meta.data", f"obs ({obs.shape[1]} columns)")

    var = adata.var.copy()
    var_features: list[str] = []
    if "highly_variable" in var.columns:
        hv = var["highly_variable"].fillna(False).to_numpy(dtype=bool)
        idx = np.flatnonzero(hv)
        if "highly_variable_rank" in var.columns:
            rank = var["highly_variable_rank"].to_numpy(dtype=float)[idx]
            idx = idx[np.argsort(rank, kind="stable")]
        var_features = [features[i] for i in idx]
        man.map("VariableFeatures", f"var['highly_variable'] ({len(var_features)} features)")
        var = var.drop(columns=[c for c in ("highly_variable", "highly_variable_rank") if c in var.columns])
    if man.renamed.get("features"):
        var[ORIGINAL_NAME_COLUMN] = orig_features
    var.index = pd.Index(features)
    fmeta = (
        _frames.pandas_to_r_data_frame(var, r_features, _column_classes(adata, "var"))
        if var.shape[1]
        else rinterface.NULL
    )
    if var.shape[1]:
        man.map(f"{assay} feature metadata", f"var ({var.shape[1]} columns)")

    red_info = seurat_uns.get("reductions", {}) if isinstance(seurat_uns.get("reductions", {}), dict) else {}
    by_obsm = {v.get("obsm"): (k, v) for k, v in red_info.items() if isinstance(v, dict)}
    reductions = {}
    for key in adata.obsm:
        emb = adata.obsm[key]
        if isinstance(emb, pd.DataFrame) or np.ndim(emb) != 2:
            man.drop(f"obsm[{key!r}]", "not a 2-d array")
            continue
        emb = np.asarray(emb.toarray() if sparse.issparse(emb) else emb, dtype=float)
        name, info = by_obsm.get(key, (key[2:] if key.startswith("X_") else key, {}))
        rkey = info.get("key") or reduction_key(name)
        if not re.match(r"^[a-zA-Z][a-zA-Z0-9]*_$", rkey):
            rkey = reduction_key(name)
        parts = {
            "embeddings": _sparse.r_matrix(emb, r_cells, [f"{rkey}{i + 1}" for i in range(emb.shape[1])]),
            "key": _r.r_str([rkey]),
        }
        varm_key = info.get("varm") or ("PCs" if name == "pca" else None)
        if varm_key and varm_key in adata.varm and np.shape(adata.varm[varm_key])[1] == emb.shape[1]:
            load = np.asarray(adata.varm[varm_key], dtype=float)
            rows = np.flatnonzero(~np.isnan(load).all(axis=1))
            rank = info.get("loadings_order")
            if rank is not None and len(rank) == len(rows):
                rows = rows[np.asarray(rank)]
            parts["loadings"] = _sparse.r_matrix(
                load[rows], [features[i] for i in rows], [f"{rkey}{i + 1}" for i in range(emb.shape[1])]
            )
            man.map(f"reduction {name!r} loadings", f"varm[{varm_key!r}] ({len(rows)} features)")
        if "stdev" in info:
            parts["stdev"] = _sparse.r_vector(np.asarray(info["stdev"], dtype=float), "double")
        reductions[name] = _r.named_list(parts)
        man.map(f"reduction {name!r}", f"obsm[{key!r}] (key {rkey!r})")
    for key in adata.obsp:
        man.drop(f"obsp[{key!r}]", "graphs are not converted")
    for key in adata.uns:
        if key not in RESERVED_UNS:
            man.drop(f"uns[{key!r}]", "not converted to Seurat (use add_results(misc=...))")
    red_list = _r.named_list(reductions) if reductions else rinterface.ListSexpVector([])
    n_count, n_feature = _count_stats(counts_py)
    return _r.call(
        ".pysb_make_seurat",
        counts,
        data,
        meta,
        _r.r_str([assay]),
        fmeta,
        _r.r_str(var_features),
        idents,
        red_list,
        n_count=_sparse.r_vector(n_count, "double"),
        n_feature=_sparse.r_vector(n_feature, "integer"),
    )


def _count_stats(counts) -> tuple[np.ndarray, np.ndarray]:
    """Seurat's nCount (column sums) and nFeature (number of values > 0) per cell, from CSR rows.

    Works over the matrix's own arrays: the only temporary is one bool per non-zero.
    """
    m = counts if sparse.issparse(counts) else sparse.csr_matrix(np.asarray(counts))
    m = m.tocsr()
    n_rows, nnz = m.shape[0], m.nnz
    full = np.diff(m.indptr) > 0
    n_count = np.zeros(n_rows)
    n_feature = np.zeros(n_rows, dtype=np.int32)
    if nnz == 0:
        return n_count, n_feature
    # over the non-empty rows only, each segment runs to the next non-empty row's start
    starts = m.indptr[:-1][full]
    n_count[full] = np.add.reduceat(m.data, starts, dtype=np.float64)
    positive = m.data > 0
    if positive.all():
        n_feature[:] = np.diff(m.indptr)
    else:
        n_feature[full] = np.add.reduceat(positive, starts, dtype=np.int64)
    return n_count, n_feature


def _sce(adata, man: Manifest):
    from ._values import to_r_value

    rinterface = _r.ri()
    _r.require_package("SingleCellExperiment", "to build a SingleCellExperiment")
    cells = [str(c) for c in adata.obs_names]
    features = [str(f) for f in adata.var_names]
    r_cells, r_features = _r.r_str(cells), _r.r_str(features)  # converted once, shared by every part
    order = ["counts", "logcounts"]
    names = [n for n in order if n in adata.layers] + [n for n in adata.layers if n not in order]
    assays = {}
    for n in names:
        assays[n] = _sparse.csr_to_dgc(adata.layers[n], r_features, r_cells)
        man.map(f"assay {n!r}", f"layers[{n!r}]")
    if adata.X is not None and not any(_same_matrix(adata.X, adata.layers[n]) for n in names):
        assays["X"] = _sparse.csr_to_dgc(adata.X, r_features, r_cells)
        man.map("assay 'X'", "X")
    elif adata.X is not None:
        man.note("X equals one of the layers; not duplicated as an assay")
    col_data = _frames.pandas_to_r_data_frame(adata.obs, r_cells, _column_classes(adata, "obs"))
    row_data = _frames.pandas_to_r_data_frame(adata.var, r_features, _column_classes(adata, "var"))
    man.map("colData", f"obs ({adata.obs.shape[1]} columns)")
    man.map("rowData", f"var ({adata.var.shape[1]} columns)")

    sce_uns = adata.uns.get("sce", {}) if isinstance(adata.uns.get("sce", {}), dict) else {}
    rd_names = sce_uns.get("reduced_dims", {}) if isinstance(sce_uns.get("reduced_dims", {}), dict) else {}
    rds = {}
    for key in adata.obsm:
        emb = adata.obsm[key]
        if isinstance(emb, pd.DataFrame) or np.ndim(emb) != 2:
            man.drop(f"obsm[{key!r}]", "not a 2-d array")
            continue
        emb = np.asarray(emb.toarray() if sparse.issparse(emb) else emb, dtype=float)
        name = rd_names.get(key) or sce_name(key)
        rmat = _sparse.r_matrix(emb, r_cells, None)
        if name == "PCA" and "PCs" in adata.varm and np.shape(adata.varm["PCs"])[1] == emb.shape[1]:
            load = np.asarray(adata.varm["PCs"], dtype=float)
            rows = np.flatnonzero(~np.isnan(load).all(axis=1))
            rot = _sparse.r_matrix(load[rows], [features[i] for i in rows], None)
            rmat = rinterface.baseenv["structure"](rmat, rotation=rot)
            man.map("attr(reducedDim 'PCA', 'rotation')", "varm['PCs']")
        rds[name] = rmat
        man.map(f"reducedDim {name!r}", f"obsm[{key!r}]")
    metadata = {}
    for key, value in adata.uns.items():
        if key in RESERVED_UNS:
            continue
        try:
            metadata[key] = to_r_value(value, f"uns[{key!r}]")
        except PyscvibridgeError as e:
            man.drop(f"uns[{key!r}]", str(e))
            continue
        man.map(f"metadata${key}", f"uns[{key!r}]")
    for key in adata.obsp:
        man.drop(f"obsp[{key!r}]", "not converted (colPairs are not written)")
    empty = rinterface.ListSexpVector([])
    return _r.call(
        ".pysb_make_sce",
        _r.named_list(assays) if assays else empty,
        col_data,
        row_data,
        _r.named_list(rds) if rds else empty,
        _r.named_list(metadata) if metadata else empty,
    )


def to_r(adata, *, kind: Kind = "Seurat", assay: str = "RNA", return_manifest: bool = False):
    """Convert an AnnData to a Seurat object or a SingleCellExperiment in the R session.

    Parameters
    ----------
    adata
        The AnnData; raw counts in ``layers["counts"]`` (else ``X``), normalised values in
        ``layers["logcounts"]``.
    kind
        ``"Seurat"`` or ``"SingleCellExperiment"``.
    assay
        Seurat: the name of the assay to create.
    return_manifest
        Also return the manifest (a dict, as in ``uns["conversion"]``); it is logged at INFO either way.

    Returns
    -------
    The rpy2 R object (and the manifest when asked).
    """
    if kind not in ("Seurat", "SingleCellExperiment"):
        msg = f"kind must be 'Seurat' or 'SingleCellExperiment', not {kind!r}"
        raise PyscvibridgeError(msg)
    _check_names(adata)
    man = Manifest("AnnData -> R", "AnnData")
    man.detail("kind", kind)
    obj = _seurat(adata, assay, man) if kind == "Seurat" else _sce(adata, man)
    if kind == "Seurat":
        man.detail("SeuratObject", _r.strs(_r.call(".pysb_so_version"))[0])
    man.log()
    return (obj, man.to_dict()) if return_manifest else obj


def write_rds(adata, path: str | os.PathLike, *, kind: Kind = "Seurat", assay: str = "RNA") -> Path:
    """Write an AnnData to an ``.rds`` file as a Seurat object or a SingleCellExperiment.

    The file is written to a temporary file in the same folder and renamed into place, so ``path``
    is either the complete new file or untouched. Returns the path.
    """
    path = Path(path)
    if not path.parent.is_dir():
        msg = f"the folder {str(path.parent)!r} does not exist"
        raise PyscvibridgeError(msg)
    obj = to_r(adata, kind=kind, assay=assay)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        _r.call(".pysb_save_rds", obj, _r.r_str([tmp]))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
