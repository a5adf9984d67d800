"""Seurat (v4 ``Assay`` and v5 ``Assay5``, joined or split layers) -> AnnData.

Slots are read directly (``obj@assays$RNA@layers``, the ``cells`` / ``features`` LogMaps), never
through SeuratObject methods, so a v5 object reads the same with SeuratObject 4 or 5 installed.

What goes where (also recorded in ``uns["conversion"]``):

- counts (``counts`` or split ``counts.<x>`` layers) -> ``layers["counts"]`` and ``X`` (the same
  matrix); one joined ``dgCMatrix`` is viewed, not copied;
- data (``data`` / ``data.<x>``) -> ``layers["logcounts"]`` (left out, and noted, when it equals the
  counts, as in an object that was never normalised);
- split layers -> one AnnData in the object's cell order, the layer each cell came from in
  ``obs["split_layer"]`` (a category with the layers' suffixes in layer order);
- ``scale.data`` -> not converted (dense, scaled values; reported with its shape);
- ``meta.data`` -> ``obs``; the assay's feature metadata -> ``var``; variable features ->
  ``var["highly_variable"]`` (and ``var["highly_variable_rank"]`` for v4 assays);
- reductions -> ``obsm["X_<name>"]``; loadings -> ``varm["PCs"]`` for ``pca`` and
  ``varm["<name>_loadings"]`` otherwise, NaN for features a reduction has no loading for;
  graphs -> ``obsp[<name>]``; keys and assays of reductions -> ``uns["seurat"]["reductions"]``;
- active identities: the name of the ``meta.data`` column they equal, else ``obs["seurat_ident"]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from .._errors import PyscvibridgeError
from . import _frames, _r, _sparse
from ._manifest import Manifest

SPLIT_COLUMN = "split_layer"
ORIGINAL_NAME_COLUMN = "original_feature_name"


def _group(name: str, base: str) -> bool:
    return name == base or name.startswith(base + ".")


def _check_unique(names: list[str], what: str, where: str) -> None:
    s = pd.Index(names)
    if s.has_duplicates:
        dups = sorted(set(s[s.duplicated()]))[:5]
        msg = (
            f"{where} has duplicated {what} names (e.g. {dups!r}); make them unique first "
            f"(in R: make.unique()) and convert again."
        )
        raise PyscvibridgeError(msg)


def _layer_group(layers: dict, base: str, cells: pd.Index, features: pd.Index, assay: str, *, copy: bool):
    """Stack the layers of one group (e.g. counts, counts.A, counts.B) into cells x features.

    Returns (matrix, per-cell layer suffix or None, how).
    """
    names = [n for n in layers if _group(n, base)]
    if not names:
        return None, None, ""
    blocks, fidx, block_cells, suffixes = [], [], [], []
    for n in names:
        part = layers[n]
        lcells = _r.strs(part["cells"]) if "cells" in part else list(cells)
        lfeats = _r.strs(part["features"]) if "features" in part else list(features)
        m, how = _sparse.to_cells_by_features(part["matrix"], copy=copy)
        if m.shape != (len(lcells), len(lfeats)):
            msg = (
                f"layer {n!r} of assay {assay!r} has shape {m.shape[::-1]} but its cell/feature maps "
                f"list {len(lcells)} cells and {len(lfeats)} features; the object is damaged."
            )
            raise PyscvibridgeError(msg)
        if len(names) == 1 and lcells == list(cells) and lfeats == list(features):
            return m, None, f"{how} ({n})"
        f_pos = features.get_indexer(lfeats)
        if (f_pos < 0).any():
            msg = f"layer {n!r} of assay {assay!r} has features that the assay does not list; the object is damaged."
            raise PyscvibridgeError(msg)
        if not sparse.issparse(m):
            m = sparse.csr_matrix(m)
        blocks.append(m)
        fidx.append(None if np.array_equal(f_pos, np.arange(len(features))) else f_pos)
        block_cells.extend(lcells)
        suffixes.extend([n[len(base) + 1 :] if n != base else base] * len(lcells))
    stacked = _sparse.stack_rows(blocks, fidx, len(features))
    block_index = pd.Index(block_cells)
    _check_unique(block_cells, "cell", f"the {base!r} layers of assay {assay!r}")
    order = block_index.get_indexer(cells)
    if (order < 0).any():
        missing = list(cells[order < 0][:5])
        msg = f"the {base!r} layers of assay {assay!r} have no values for cells {missing!r}; cannot convert."
        raise PyscvibridgeError(msg)
    if not np.array_equal(order, np.arange(len(cells))):
        stacked = stacked[order]
    split = None
    if len(names) > 1:
        split = pd.Categorical(
            np.asarray(suffixes, dtype=object)[order], categories=[n[len(base) + 1 :] for n in names]
        )
    return stacked, split, f"{len(names)} layers {names!r} stacked (one copy)"


def _same_values(a, b) -> bool:
    if a.shape != b.shape:
        return False
    if sparse.issparse(a) and sparse.issparse(b):
        if a.nnz != b.nnz:
            return False
        if a.data.__array_interface__["data"][0] == b.data.__array_interface__["data"][0]:
            return True
        return (a != b).nnz == 0
    if sparse.issparse(a) != sparse.issparse(b):
        return False
    return bool(np.array_equal(a, b))


def _align_rows(mat: np.ndarray, names: list[str], target: pd.Index) -> np.ndarray | None:
    idx = pd.Index(names).get_indexer(target)
    if (idx < 0).any() or len(names) != len(target):
        return None
    return mat if np.array_equal(idx, np.arange(len(target))) else mat[idx]


def _from_assay(a, *, name, cells, obs, copy, manifest):
    """:func:`from_assay`, also returning the assay's feature names as R has them."""
    import anndata as ad

    rinterface = _r.ri()
    man = manifest if manifest is not None else Manifest("R -> AnnData", "Seurat assay")
    assay = name
    assay_class = _r.rclass(a)[0]
    man.detail("assay", assay)
    man.detail("assay_class", assay_class)
    so_version = _r.strs(_r.call(".pysb_so_version"))[0]
    man.detail("SeuratObject", so_version or "not installed")

    own_cells = _r.call(".pysb_assay_cells", a)
    r_cells = own_cells if cells is None else _r.r_str(cells)
    cells = _r.strs(r_cells)
    _check_unique(cells, "cell", f"assay {assay!r}")
    cells_index = pd.Index(cells, dtype=object)

    parts = _r.as_dict(_r.call(".pysb_assay_layers", a, r_cells))
    layers = {n: _r.as_dict(v) for n, v in _r.as_dict(parts["layers"]).items()}
    features = _r.strs(parts["features"])
    _check_unique(features, "feature", f"assay {assay!r}")
    features_index = pd.Index(features, dtype=object)
    assay_cell_list = _r.strs(parts["cells"]) if "cells" in parts else cells
    _check_unique(assay_cell_list, "cell", f"assay {assay!r}")
    assay_cells = set(assay_cell_list)
    if assay_cells != set(cells):
        msg = (
            f"assay {assay!r} covers {len(assay_cells)} cells but the object has {len(cells)}; "
            f"converting an assay over a subset of cells is not supported (subset the object in R first)."
        )
        raise PyscvibridgeError(msg)

    counts, split, how = _layer_group(layers, "counts", cells_index, features_index, assay, copy=copy)
    if counts is None:
        msg = (
            f"assay {assay!r} has no counts layer (it has {sorted(layers)!r}); scVI needs raw counts. "
            f"Add them in R (e.g. LayerData(obj, 'counts') <- ...) and convert again."
        )
        raise PyscvibridgeError(msg)
    man.map("layers['counts']", f"{assay} counts: {how}")
    man.map("X", "the same matrix as layers['counts']")

    layers_out = {"counts": counts}
    data, _, how_data = _layer_group(layers, "data", cells_index, features_index, assay, copy=copy)
    if data is not None:
        if _same_values(data, counts):
            man.drop(f"{assay} data", "equals counts (the object was not normalised); not duplicated")
        else:
            layers_out["logcounts"] = data
            man.map("layers['logcounts']", f"{assay} data: {how_data}")
    for n, part in layers.items():
        if _group(n, "counts") or _group(n, "data"):
            continue
        dims = tuple(int(d) for d in rinterface.baseenv["dim"](part["matrix"]))
        if _group(n, "scale.data"):
            man.drop(
                f"{assay} {n}",
                f"dense scaled values ({dims[0]} features x {dims[1]} cells); recompute with scanpy.pp.scale if needed",
            )
            continue
        lcells = _r.strs(part["cells"]) if "cells" in part else cells
        lfeats = _r.strs(part["features"]) if "features" in part else features
        if set(lcells) == set(cells) and lfeats == features:
            m, how_o = _sparse.to_cells_by_features(part["matrix"], copy=copy)
            order = pd.Index(lcells).get_indexer(cells_index)
            layers_out[n] = m if np.array_equal(order, np.arange(len(cells))) else m[order]
            man.map(f"layers[{n!r}]", f"{assay} {n}: {how_o}")
        else:
            man.drop(f"{assay} {n}", f"covers {dims[0]} features x {dims[1]} cells, not the whole assay")

    obs = pd.DataFrame(index=cells_index) if obs is None else obs
    if split is not None:
        col = SPLIT_COLUMN if SPLIT_COLUMN not in obs.columns else f"{SPLIT_COLUMN}_"
        obs[col] = split
        man.map(f"obs[{col!r}]", "the counts layer each cell came from (split v5 layers joined)")
        man.detail("split_column", col)

    # var
    var = pd.DataFrame(index=features_index)
    fmeta = _r.call(".pysb_assay_feature_meta", a)
    fm_names = _r.strs(rinterface.baseenv["names"](fmeta))
    if fm_names:
        fm = _frames.frame_to_pandas(
            dict(zip(fm_names, list(fmeta), strict=True)), features, man, f"{assay} feature metadata"
        )
        var = fm
        man.map("var", f"{assay} feature metadata ({fm.shape[1]} columns)")
    vf = _r.strs(_r.call(".pysb_assay_var_features", a))
    if vf:
        hv = features_index.isin(vf)
        var["highly_variable"] = hv
        if assay_class != "Assay5":
            rank = pd.Series(np.nan, index=features_index)
            rank[vf] = np.arange(len(vf), dtype=float)
            var["highly_variable_rank"] = rank.to_numpy()
        man.map("var['highly_variable']", f"VariableFeatures ({len(vf)} features)")

    # feature names written by to_r() with "_" replaced: recover the originals
    if ORIGINAL_NAME_COLUMN in var.columns:
        orig = var[ORIGINAL_NAME_COLUMN].astype(object)
        if not orig.isna().any() and pd.Index(orig).is_unique:
            for old, new in zip(features, orig, strict=True):
                if old != new:
                    man.rename("features", old, new)
            var.index = pd.Index(list(orig), dtype=object)
            var = var.drop(columns=[ORIGINAL_NAME_COLUMN])
            man.note(f"feature names recovered from the assay's {ORIGINAL_NAME_COLUMN!r} column")

    adata = ad.AnnData(X=counts, obs=obs, var=var, layers=layers_out)
    if manifest is None:
        adata.uns["conversion"] = man.to_dict()
    return adata, features


def from_assay(
    a,
    *,
    name: str = "assay",
    cells=None,
    obs: pd.DataFrame | None = None,
    copy: bool = False,
    manifest: Manifest | None = None,
):
    """One Seurat assay object (v4 ``Assay``, ``SCTAssay`` or v5 ``Assay5``, as rpy2 object) as an AnnData.

    Its counts (split ``counts.<x>`` layers joined, in cell order, with each cell's layer suffix in
    ``obs["split_layer"]``), data and other whole-assay layers, feature metadata and variable
    features, as :func:`from_seurat` maps them; read from the slots, so a v5 assay reads the same
    with SeuratObject 4 or 5. The Seurat object's metadata is not there: an assay has none.

    Parameters
    ----------
    a
        The assay (``obj[["RNA"]]``, as a Seurat 5 integration method receives it).
    name
        The assay's name in its object, for messages and the manifest.
    cells
        The cell order of the result (an R character vector or a list of str); default: the
        assay's own cells, in its order. Must be the same set as the assay's.
    obs
        Cell metadata, indexed by ``cells`` (default: none).
    copy
        Copy the matrices instead of viewing R's memory.
    manifest
        A :class:`Manifest` to record into (default: a new one, in ``uns["conversion"]``).
    """
    return _from_assay(a, name=name, cells=cells, obs=obs, copy=copy, manifest=manifest)[0]


def assay_table(obj) -> dict[str, dict]:
    """Every assay of a Seurat object (v4 or v5), without converting one.

    ``{name: {"class": "Assay5", "n_features": 2000, "n_cells": 400, "layers": ["counts", ...]}}``
    in the object's assay order; ``layers`` are an ``Assay5``'s layers or a v4 assay's non-empty
    slots. Recorded by :func:`from_seurat` as the manifest's ``details["assay_table"]``.
    """
    table = {}
    for name, a in _r.as_dict(_r.call(".pysb_seurat_assays", obj)).items():
        a = _r.as_dict(a)
        table[name] = {
            "class": _r.strs(a["class"])[0],
            "n_features": int(a["n_features"][0]),
            "n_cells": int(a["n_cells"][0]),
            "layers": _r.strs(a["layers"]),
        }
    return table


def from_seurat(obj, *, assay: str | None = None, copy: bool = False):
    """A Seurat object (v4 or v5) in the R session as an AnnData; see the module docstring."""
    rinterface = _r.ri()
    man = Manifest("R -> AnnData", "Seurat")
    summary = _r.as_dict(_r.call(".pysb_seurat_summary", obj))
    assays = _r.strs(summary["assays"])
    classes = dict(zip(assays, _r.strs(summary["assay_classes"]), strict=True))
    active = _r.strs(summary["active"])[0]
    assay = active if assay is None else assay
    if assay not in assays:
        msg = f"assay {assay!r} is not in this Seurat object; it has {assays!r}. Pass one of them as assay=."
        raise PyscvibridgeError(msg)
    man.detail("object_version", _r.strs(summary["version"])[0])
    man.detail("active_assay", active)
    man.detail("assay_table", assay_table(obj))
    for other in assays:
        if other != assay:
            man.drop(f"assay {other!r}", f"{classes[other]} not chosen; convert it with assay={other!r}")

    cells = _r.strs(summary["cells"])
    _check_unique(cells, "cell", "this Seurat object")
    md = obj.do_slot("meta.data")
    obs = _frames.frame_to_pandas(
        dict(zip(_r.strs(rinterface.baseenv["names"](md)), list(md), strict=True)), cells, man, "meta.data"
    )
    man.map("obs", f"meta.data ({obs.shape[1]} columns)")

    a = _r.list_get(obj.do_slot("assays"), assay)
    adata, features = _from_assay(a, name=assay, cells=summary["cells"], obs=obs, copy=copy, manifest=man)
    cells_index = adata.obs_names
    features_index = pd.Index(features, dtype=object)
    seurat_uns: dict = {"assay": assay, "reductions": {}}

    idents = _r.as_dict(_r.call(".pysb_idents", obj))
    ident_vals, _ = _frames.column_to_py(idents["values"])
    if ident_vals is not None and len(ident_vals) == len(cells):
        ident_names = _r.strs(idents["names"])
        ident = pd.Series(ident_vals, index=ident_names if ident_names else cells)
        ident = ident.reindex(cells) if ident_names else ident
        ident.index = cells_index
        same = [
            c
            for c in obs.columns
            if isinstance(obs[c].dtype, pd.CategoricalDtype)
            and list(obs[c].cat.categories) == list(ident.cat.categories)
            and obs[c].astype(object).equals(ident.astype(object))
        ]
        if same:
            seurat_uns["ident_column"] = same[0]
            man.note(f"active identities are the meta.data column {same[0]!r}")
        else:
            adata.obs["seurat_ident"] = ident.to_numpy()
            seurat_uns["ident_column"] = "seurat_ident"
            man.map("obs['seurat_ident']", "active.ident (Idents(obj))")

    # reductions
    reductions = _r.as_dict(obj.do_slot("reductions"))
    for name, red in reductions.items():
        r = _r.as_dict(_r.call(".pysb_reduction", red))
        emb_r = r["embeddings"]
        emb_names = _r.strs(rinterface.baseenv["rownames"](emb_r))
        emb = _sparse.dense_rows(emb_r) if len(emb_names) else None
        key = _r.strs(r["key"])[0] if len(r["key"]) else ""
        used = _r.strs(r["assay"])[0] if len(r["assay"]) else ""
        aligned = _align_rows(emb, emb_names, cells_index) if emb is not None else None
        if aligned is None:
            man.drop(f"reduction {name!r}", "its cells are not the object's cells")
            continue
        obsm_key = f"X_{name}"
        adata.obsm[obsm_key] = aligned
        info = {"obsm": obsm_key, "key": key, "assay": used}
        man.map(f"obsm[{obsm_key!r}]", f"reduction {name!r} (key {key!r}, {aligned.shape[1]} dims)")
        stdev = np.asarray(r["stdev"], dtype=float) if len(r["stdev"]) else None
        if stdev is not None:
            info["stdev"] = stdev
        load_r = r["loadings"]
        load_feats = _r.strs(rinterface.baseenv["rownames"](load_r))
        if load_feats:
            if used != assay:
                man.drop(f"reduction {name!r} loadings", f"over assay {used!r}, not {assay!r}")
            else:
                load = _sparse.dense_rows(load_r)
                pos = features_index.get_indexer(load_feats)
                if (pos < 0).any():
                    man.drop(f"reduction {name!r} loadings", "over features not in the assay")
                else:
                    full = np.full((len(features), load.shape[1]), np.nan)
                    full[pos] = load
                    varm_key = "PCs" if name == "pca" else f"{name}_loadings"
                    adata.varm[varm_key] = full
                    info["varm"] = varm_key
                    if not np.all(np.diff(pos) > 0):  # keep the loadings' feature order for to_r()
                        info["loadings_order"] = np.argsort(np.argsort(pos)).astype(np.int32)
                    man.map(
                        f"varm[{varm_key!r}]",
                        f"reduction {name!r} loadings ({len(load_feats)} of {len(features)} features; others NaN)",
                    )
        seurat_uns["reductions"][name] = info

    # graphs
    graphs = _r.as_dict(obj.do_slot("graphs"))
    for name, g in graphs.items():
        dn = rinterface.baseenv["dimnames"](g)
        gcells = _r.strs(dn[0]) if not _r.is_null(dn) else []
        if ("dgCMatrix" not in _r.rclass(g) and "Graph" not in _r.rclass(g)) or gcells != cells:
            man.drop(f"graph {name!r}", "not a sparse cells x cells matrix in the object's cell order")
            continue
        adata.obsp[name] = _sparse.dgc_to_csr(g, copy=copy).T
        man.map(f"obsp[{name!r}]", f"graph {name!r} (view)")

    for slot in ("misc", "commands", "tools", "images", "neighbors"):
        names = _r.strs(summary[slot])
        if names:
            man.drop(f"@{slot}", f"not converted ({', '.join(names[:10])})")

    adata.uns["seurat"] = seurat_uns
    return adata, man
