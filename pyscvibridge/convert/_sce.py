"""SingleCellExperiment -> AnnData.

- assays -> ``layers`` under their names; ``X`` is the ``counts`` assay (the same matrix) when there
  is one, else the first assay (or ``assay=``). ``dgCMatrix`` and dense numeric assays are viewed,
  not copied; other classes (DelayedMatrix, ...) are coerced to ``dgCMatrix`` in R;
- colData -> ``obs``, rowData -> ``var`` (column types as in :mod:`._frames`);
- reducedDims -> ``obsm`` with scanpy's names (``PCA`` -> ``X_pca``, ``UMAP`` -> ``X_umap``,
  ``TSNE`` -> ``X_tsne``, other -> ``X_<name>``); the names are kept in ``uns["sce"]["reduced_dims"]``;
  a ``rotation`` attribute on ``PCA`` (scater's loadings) -> ``varm["PCs"]``;
- ``metadata()`` -> ``uns`` (plain lists, vectors and matrices; anything else reported);
- altExps, colPairs, rowPairs -> listed in the manifest, not converted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._errors import PyscvibridgeError
from . import _frames, _r, _sparse
from ._manifest import Manifest

_REDUCTIONS = {
    "pca": "pca",
    "dca": "dca",
    "tsne": "tsne",
    "umap": "umap",
    "dm": "diffmap",
    "magic": "magic",
    "phate": "phate",
}
RESERVED_UNS = ("conversion", "seurat", "sce")


def obsm_key(name: str) -> str:
    """scanpy's key for a reducedDim name (``PCA`` -> ``X_pca``)."""
    known = _REDUCTIONS.get(name.lower())
    return f"X_{known}" if known else f"X_{name}"


def sce_name(key: str) -> str:
    """A reducedDim name for an obsm key (``X_pca`` -> ``PCA``, ``X_scVI`` -> ``scVI``)."""
    base = key[2:] if key.startswith("X_") else key
    inverse = {v: k for k, v in _REDUCTIONS.items()}
    if base in inverse:
        return inverse[base].upper()
    return base


def _names(x, n: int, what: str, man: Manifest) -> list[str]:
    names = _r.strs(x)
    if not names:
        man.note(f"the object has no {what} names; used '0'..'{n - 1}'")
        return [str(i) for i in range(n)]
    if any(v is None for v in names):
        msg = f"some {what} names are NA; give every {what} a name in R and convert again"
        raise PyscvibridgeError(msg)
    s = pd.Index(names)
    if s.has_duplicates:
        dups = sorted(set(s[s.duplicated()]))[:5]
        fn = "colnames" if what == "cell" else "rownames"
        msg = (
            f"this SingleCellExperiment has duplicated {what} names (e.g. {dups!r}); make them unique "
            f"first (in R: {fn}(sce) <- make.unique({fn}(sce))) and convert again."
        )
        raise PyscvibridgeError(msg)
    return names


def _r_kind(x) -> str:
    """The R class of a metadata value, or its type when it is code (a call, a function, ...).

    Code is never handed to an R function: an rpy2 call would evaluate a call or a symbol given
    as an argument (this runs only for files read with ``trust=True``).
    """
    rinterface = _r.ri()
    data = (
        rinterface.RTYPES.VECSXP,
        rinterface.RTYPES.REALSXP,
        rinterface.RTYPES.INTSXP,
        rinterface.RTYPES.LGLSXP,
        rinterface.RTYPES.STRSXP,
        rinterface.RTYPES.CPLXSXP,
        rinterface.RTYPES.RAWSXP,
        rinterface.RTYPES.S4SXP,
        rinterface.RTYPES.NILSXP,
    )
    if x.typeof in data:
        return _r.rclass(x)[0]
    return str(x.typeof.name).removesuffix("SXP").lower()


def _s4_frame(df, index: list[str], man: Manifest, where: str) -> pd.DataFrame:
    parts = _r.as_dict(_r.call(".pysb_s4df_to_list", df))
    cols = _r.as_dict(parts["columns"])
    for name, col in list(cols.items()):
        if col.typeof == _r.ri().RTYPES.S4SXP:
            man.drop(f"{where}${name}", f"nested {_r.rclass(col)[0]} column")
            del cols[name]
    return _frames.frame_to_pandas(cols, index, man, where)


def alt_exp_table(obj) -> dict[str, dict]:
    """The altExps of a SingleCellExperiment (other modalities: ADT, HTO, ...), without converting one.

    ``{name: {"n_features": 30, "n_cells": 400, "assays": ["counts", ...]}}``; recorded by
    :func:`from_sce` as the manifest's ``details["alt_exps"]``.
    """
    table = {}
    for name, d in _r.as_dict(_r.call(".pysb_sce_alt_exps", obj)).items():
        d = _r.as_dict(d)
        table[name] = {
            "n_features": int(d["n_features"][0]),
            "n_cells": int(d["n_cells"][0]),
            "assays": _r.strs(d["assays"]),
        }
    return table


def from_sce(obj, *, assay: str | None = None, copy: bool = False):
    """A SingleCellExperiment in the R session as an AnnData; see the module docstring."""
    import anndata as ad

    from ._values import from_r_value

    rinterface = _r.ri()
    man = Manifest("R -> AnnData", "SingleCellExperiment")
    _r.require_package("SingleCellExperiment", "to read a SingleCellExperiment")
    parts = _r.as_dict(_r.call(".pysb_sce_parts", obj))
    dims = [int(d) for d in rinterface.baseenv["dim"](obj)]
    n_features, n_cells = dims
    cells = _names(parts["cells"], n_cells, "cell", man)
    features = _names(parts["features"], n_features, "feature", man)
    assay_names = _r.strs(parts["assay_names"])
    if not assay_names:
        msg = "this SingleCellExperiment has no assays (no matrix to convert); add one, e.g. assay(sce, 'counts') <- m"
        raise PyscvibridgeError(msg)
    if assay is None:
        assay = "counts" if "counts" in assay_names else assay_names[0]
    if assay not in assay_names:
        msg = f"assay {assay!r} is not in this SingleCellExperiment; it has {assay_names!r}. Pass one of them as assay=."
        raise PyscvibridgeError(msg)
    if "counts" not in assay_names:
        man.note(f"no 'counts' assay; X is {assay!r} and there is no layers['counts']")
    man.detail("assay", assay)
    man.detail("assays", assay_names)

    layers = {}
    for name, rmat in zip(assay_names, list(parts["assays"]), strict=True):
        m, how = _sparse.to_cells_by_features(rmat, copy=copy)
        if m.shape != (n_cells, n_features):
            man.drop(f"assay {name!r}", f"shape {m.shape[::-1]} is not the object's {tuple(dims)}")
            continue
        layers[name] = m
        man.map(f"layers[{name!r}]", f"assay {name!r} ({how})")
    man.map("X", f"the same matrix as layers[{assay!r}]")

    obs = _s4_frame(parts["col_data"], cells, man, "colData")
    var = _s4_frame(parts["row_data"], features, man, "rowData")
    man.map("obs", f"colData ({obs.shape[1]} columns)")
    man.map("var", f"rowData ({var.shape[1]} columns)")
    adata = ad.AnnData(X=layers[assay], obs=obs, var=var, layers=layers)

    rd_names = _r.strs(parts["reduced_dim_names"])
    sce_uns: dict = {"reduced_dims": {}, "x_assay": assay}
    for name, rmat in zip(rd_names, list(parts["reduced_dims"]), strict=True):
        numeric = rmat.typeof in (rinterface.RTYPES.REALSXP, rinterface.RTYPES.INTSXP)
        if not numeric or len(rinterface.baseenv["dim"](rmat)) != 2:
            man.drop(f"reducedDim {name!r}", f"not a numeric matrix (an R {_r.rclass(rmat)[0]})")
            continue
        emb = _sparse.dense_rows(rmat)
        key = obsm_key(name)
        adata.obsm[key] = emb
        sce_uns["reduced_dims"][key] = name
        man.map(f"obsm[{key!r}]", f"reducedDim {name!r} ({emb.shape[1]} dims)")
        rot = rinterface.baseenv["attr"](rmat, rinterface.StrSexpVector(["rotation"]))
        if not _r.is_null(rot):
            rot_feats = _r.strs(rinterface.baseenv["rownames"](rot))
            pos = adata.var_names.get_indexer(rot_feats)
            if rot_feats and (pos >= 0).all():
                full = np.full((n_features, int(rinterface.baseenv["ncol"](rot)[0])), np.nan)
                full[pos] = _sparse.dense_rows(rot)
                varm_key = "PCs" if key == "X_pca" else f"{name}_rotation"
                adata.varm[varm_key] = full
                man.map(
                    f"varm[{varm_key!r}]",
                    f"attr(reducedDim {name!r}, 'rotation') ({len(rot_feats)} features; others NaN)",
                )

    metadata = _r.as_dict(parts["metadata"])
    for k, v in metadata.items():
        val = from_r_value(v, f"metadata${k}")
        if val is None or k in RESERVED_UNS:
            man.drop(
                f"metadata${k}",
                f"an R {_r_kind(v)} that has no plain Python equivalent" if val is None else "reserved name",
            )
            continue
        adata.uns[k] = val
        man.map(f"uns[{k!r}]", f"metadata${k}")

    alt_exps = alt_exp_table(obj) if _r.strs(parts["alt_exps"]) else {}
    for name, d in alt_exps.items():
        man.drop(
            f"altExp {name!r}",
            f"{d['n_features']} features x {d['n_cells']} cells; convert it separately (altExp(sce, {name!r}))",
        )
    if alt_exps:
        man.detail("alt_exps", alt_exps)
    for what in ("col_pairs", "row_pairs"):
        names = _r.strs(parts[what])
        if names:
            man.drop(what.replace("_p", "P"), f"not converted ({', '.join(names)})")
    adata.uns["sce"] = sce_uns
    return adata, man
