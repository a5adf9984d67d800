"""How well an integration worked: scib-metrics on the unintegrated PCA, scVI and Harmony.

The metrics are the scIB benchmark's (Luecken et al. 2022) as scib-metrics implements them, scored on
each embedding in ``obsm`` with the same k-nearest-neighbour graphs scib-metrics' ``Benchmarker``
builds (exact kNN here: CellBench-sized data needs no approximate search):

- bio conservation (cells of one label stay together): isolated labels, KMeans NMI and ARI,
  silhouette of labels, cLISI;
- batch correction (batches mix within a label): BRAS (batch silhouette), iLISI, graph connectivity,
  PCR comparison with the unintegrated PCA, and optionally kBET (off by default: its JAX compilation
  takes minutes on a laptop CPU).

Aggregates follow the ``Benchmarker``: the mean of each group's metrics, and
``Total = 0.4 * batch correction + 0.6 * bio conservation``. Every score is in [0, 1], higher is better.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._atomic import atomic_path
from ._conventions import UNS_INTEGRATION
from ._errors import PyscvibridgeError, import_or_hint
from ._jit_cache import cache_jax_compilations

if TYPE_CHECKING:
    import anndata as ad
    import pandas as pd
    from matplotlib.figure import Figure

logger = logging.getLogger("pyscvibridge")

UNS_KEY = UNS_INTEGRATION
BIO = ("Isolated labels", "KMeans NMI", "KMeans ARI", "Silhouette label", "cLISI")
BATCH = ("BRAS", "iLISI", "KBET", "Graph connectivity", "PCR comparison")
AGGREGATES = ("Batch correction", "Bio conservation", "Total")
#: Readable row names for the usual ``obsm`` keys.
METHOD_NAMES = {"X_pca": "Unintegrated (PCA)", "X_scVI": "scVI", "X_harmony": "Harmony"}
#: The file names :func:`save_metrics` writes.
METRICS_FILES = {"csv": "metrics.csv", "table": "metrics_table.png"}


def harmony(
    adata: ad.AnnData,
    batch_key: str | None = None,
    *,
    use_rep: str = "X_pca",
    key_added: str = "X_harmony",
    seed: int = 0,
) -> ad.AnnData:
    """Harmony (harmonypy) on ``obsm[use_rep]`` by ``batch_key``; the corrected PCs go in ``obsm[key_added]``.

    Harmony is the integration R users most often pick (``Seurat::IntegrateLayers(method =
    HarmonyIntegration)``, ``harmony::RunHarmony``), so it is the natural alternative to compare with.
    ``batch_key`` defaults to the one :func:`~pyscvibridge.integrate` recorded.
    """
    harmonypy = import_or_hint("harmonypy", "metrics")
    batch_key, _ = _keys(adata, batch_key, None, need_labels=False)
    if use_rep not in adata.obsm:
        msg = f"No .obsm[{use_rep!r}] to run Harmony on; run pyscvibridge.integrate(adata, batch_key) first."
        raise PyscvibridgeError(msg)
    pcs = np.asarray(adata.obsm[use_rep], dtype=np.float64)
    meta = adata.obs[[batch_key]].astype(str)
    hlog = logging.getLogger("harmonypy")
    level = hlog.level
    hlog.setLevel(logging.WARNING)
    try:
        ho = harmonypy.run_harmony(pcs, meta, batch_key, verbose=False, random_state=seed)
    finally:
        hlog.setLevel(level)
    z = np.asarray(ho.Z_corr)
    adata.obsm[key_added] = (z if z.shape[0] == adata.n_obs else z.T).astype(np.float32)
    logger.info("added .obsm[%r] (Harmony on .obsm[%r] by %r)", key_added, use_rep, batch_key)
    return adata


def benchmark(
    adata: ad.AnnData,
    *,
    batch_key: str | None = None,
    labels_key: str | None = None,
    embeddings: Sequence[str] = ("X_pca", "X_scVI", "X_harmony"),
    unintegrated: str = "X_pca",
    run_harmony: bool = True,
    kbet: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    """Score each embedding with scib-metrics: one row per embedding, one column per metric.

    Parameters
    ----------
    adata
        Output of :func:`pyscvibridge.integrate` (or any AnnData with the embeddings in ``obsm``).
    batch_key, labels_key
        ``obs`` columns; default those ``integrate`` recorded. Labels are required: bio conservation
        is measured against known cell types.
    embeddings
        ``obsm`` keys to score. ``"X_harmony"`` is computed first (see :func:`harmony`) when it is
        missing and ``run_harmony`` is true.
    unintegrated
        ``obsm`` key of the unintegrated embedding, the reference of the PCR comparison.
    kbet
        Also compute kBET per label (slow to compile on CPU).
    seed
        Seed of KMeans and Harmony.

    Returns
    -------
    A DataFrame indexed by method (``"Unintegrated (PCA)"``, ``"scVI"``, ``"Harmony"`` for the usual
    keys, else the key), with the metric columns, then ``"Batch correction"``, ``"Bio conservation"``
    and ``"Total"``. ``df.attrs`` holds the ``obsm`` key of each row, the keys and the metric types.
    """
    import pandas as pd

    batch_key, labels_key = _keys(adata, batch_key, labels_key, need_labels=True)
    embeddings = list(embeddings)
    if "X_harmony" in embeddings and "X_harmony" not in adata.obsm and run_harmony:
        harmony(adata, batch_key, use_rep=unintegrated, seed=seed)
    missing = [k for k in [*embeddings, unintegrated] if k not in adata.obsm]
    if missing:
        msg = f"No embedding .obsm{missing} to score (.obsm holds {list(adata.obsm)})."
        raise PyscvibridgeError(msg)
    labelled = adata.obs[labels_key].notna().to_numpy()
    if not labelled.any():
        msg = f"labels_key {labels_key!r} is NA for every cell: bio conservation cannot be measured."
        raise PyscvibridgeError(msg)
    if not labelled.all():
        warnings.warn(
            f"{int((~labelled).sum())} of {adata.n_obs} cells have no label (NA in labels_key {labels_key!r}); "
            "they are left out of the scores that use labels (bio conservation, BRAS, graph connectivity"
            f"{', kBET' if kbet else ''}).",
            UserWarning,
            stacklevel=2,
        )
    labels = _codes(adata.obs[labels_key])
    batch = _codes(adata.obs[batch_key])
    if len(np.unique(batch)) < 2:
        msg = f"batch_key {batch_key!r} has a single level: batch correction cannot be measured."
        raise PyscvibridgeError(msg)
    cache_jax_compilations()
    x_pre = np.asarray(adata.obsm[unintegrated], dtype=np.float32)
    rows = {}
    for key in embeddings:
        logger.info("scoring .obsm[%r] with scib-metrics", key)
        x = np.asarray(adata.obsm[key], dtype=np.float32)
        rows[METHOD_NAMES.get(key, key)] = _score(
            x, x_pre, labels, batch, kbet=kbet, seed=seed, labelled=None if labelled.all() else labelled
        )
    df = pd.DataFrame.from_dict(rows, orient="index")
    bio = [c for c in BIO if c in df]
    bat = [c for c in BATCH if c in df]
    df["Batch correction"] = df[bat].mean(axis=1)
    df["Bio conservation"] = df[bio].mean(axis=1)
    df["Total"] = 0.4 * df["Batch correction"] + 0.6 * df["Bio conservation"]
    df = df[[*bio, *bat, *AGGREGATES]].astype(float)
    df.index.name = "method"
    df.attrs.update(
        {
            "obsm_keys": dict(zip(df.index, embeddings, strict=True)),
            "batch_key": batch_key,
            "labels_key": labels_key,
            "metric_type": {
                **dict.fromkeys(bio, "Bio conservation"),
                **dict.fromkeys(bat, "Batch correction"),
                **dict.fromkeys(AGGREGATES, "Aggregate score"),
            },
        }
    )
    return df


def _keys(adata, batch_key, labels_key, *, need_labels: bool) -> tuple[str, str | None]:
    params = dict(adata.uns.get(UNS_KEY, {}).get("params", {}))
    batch_key = batch_key or params.get("batch_key") or None
    labels_key = labels_key or params.get("labels_key") or None
    if batch_key is None:
        msg = "No batch_key given and none recorded in .uns['scvi_integration']; pass batch_key=..."
        raise PyscvibridgeError(msg)
    if need_labels and labels_key is None:
        msg = (
            "Metrics need known cell labels: pass labels_key=... (an .obs column with cell types), "
            "e.g. --labels-key on the command line."
        )
        raise PyscvibridgeError(msg)
    for what, key in (("batch_key", batch_key), ("labels_key", labels_key)):
        if key is not None and key not in adata.obs:
            cols = ", ".join(repr(c) for c in adata.obs.columns) or "none"
            msg = f"{what} {key!r} is not a column of .obs. Available columns: {cols}."
            raise PyscvibridgeError(msg)
    return batch_key, labels_key


def _codes(values) -> np.ndarray:
    import pandas as pd

    return np.asarray(pd.Categorical(values.astype(str)).codes, dtype=np.int32)


def _neighbors(x):
    from scib_metrics.nearest_neighbors import NeighborsResults
    from sklearn.neighbors import NearestNeighbors

    k = min(90, x.shape[0] - 1)
    dist, idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    # scib-metrics' neighbour results exclude the cell itself, as pynndescent's do after its first column.
    nn = NeighborsResults(indices=idx[:, 1:], distances=dist[:, 1:])
    return nn, k


def _score(
    x, x_pre, labels, batch, *, kbet: bool, seed: int, labelled: np.ndarray | None = None
) -> dict[str, float]:
    """The metrics of one embedding; those that use labels only on the ``labelled`` cells (default all)."""
    import_or_hint("scib_metrics", "metrics")
    import scib_metrics

    nn, k = _neighbors(x)
    if labelled is None:
        xl, ll, bl, nnl, kl = x, labels, batch, nn, k
    else:
        xl, bl = x[labelled], batch[labelled]
        ll = np.unique(labels[labelled], return_inverse=True)[1].astype(np.int32)
        nnl, kl = _neighbors(xl)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PCR's "negative, setting to 0" and JAX's CPU notices
        nmi_ari = scib_metrics.nmi_ari_cluster_labels_kmeans(xl, ll)
        out = {
            "Isolated labels": scib_metrics.isolated_labels(xl, ll, bl),
            "KMeans NMI": nmi_ari["nmi"],
            "KMeans ARI": nmi_ari["ari"],
            "Silhouette label": scib_metrics.silhouette_label(xl, ll),
            "cLISI": scib_metrics.clisi_knn(nnl, ll),
            "BRAS": scib_metrics.bras(xl, ll, bl),
            "iLISI": scib_metrics.ilisi_knn(nn, batch),
            "Graph connectivity": scib_metrics.graph_connectivity(nnl.subset_neighbors(min(15, kl)), ll),
            "PCR comparison": scib_metrics.pcr_comparison(x_pre, x, batch, categorical=True),
        }
        if kbet:
            out["KBET"] = scib_metrics.kbet_per_label(nnl.subset_neighbors(min(50, kl)), bl, ll)
    del seed  # KMeans in scib-metrics seeds itself; kept in the signature for Harmony and future use
    return {name: float(v) for name, v in out.items()}


def format_table(df: pd.DataFrame, *, digits: int = 3) -> str:
    """The metrics as a plain-text table for a terminal: one row per metric, one column per method."""
    import pandas as pd

    types = df.attrs.get("metric_type") or {}
    group = {"Bio conservation": "bio", "Batch correction": "batch", "Aggregate score": "score"}
    t = df.T
    t.index = pd.MultiIndex.from_arrays(
        [[group.get(types.get(c, ""), "") for c in df.columns], list(df.columns)]
    )
    t.columns.name = None
    return t.to_string(float_format=lambda v: f"{v:.{digits}f}")


def table_figure(df: pd.DataFrame) -> Figure:
    """The metrics as a table figure: one row per method, cells shaded by score, the best in bold."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    types = df.attrs.get("metric_type") or {
        **dict.fromkeys([c for c in BIO if c in df], "Bio conservation"),
        **dict.fromkeys([c for c in BATCH if c in df], "Batch correction"),
        **dict.fromkeys([c for c in AGGREGATES if c in df], "Aggregate score"),
    }
    cols = list(df.columns)
    n_rows, n_cols = df.shape
    name_w, cell_w, cell_h = 2.2, 1.0, 0.5
    fig = Figure(figsize=(name_w + cell_w * n_cols + 0.3, cell_h * (n_rows + 2.4) + 0.2))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-name_w, cell_w * n_cols + 0.3)
    ax.set_ylim(-(n_rows + 0.2) * cell_h, 2.2 * cell_h)
    ax.axis("off")
    seq, agg = colormaps["PRGn"], colormaps["YlGnBu"]
    best = df.max(axis=0)
    for j, col in enumerate(cols):
        x = j * cell_w
        label = col.replace(" ", "\n", 1) if len(col) > 11 else col
        ax.text(x + cell_w / 2, 0.75 * cell_h, label, ha="center", va="center", fontsize=8.5, weight="bold")
        cmap = agg if types.get(col) == "Aggregate score" else seq
        for i in range(n_rows):
            v = df.iat[i, j]
            y = -(i + 1) * cell_h
            color = cmap(0.15 + 0.7 * v) if np.isfinite(v) else (0.9, 0.9, 0.9, 1)
            ax.add_patch(Rectangle((x + 0.04, y + 0.04), cell_w - 0.08, cell_h - 0.08, color=color, lw=0))
            dark = sum(color[:3]) / 3 < 0.5
            ax.text(
                x + cell_w / 2,
                y + cell_h / 2,
                f"{v:.2f}" if np.isfinite(v) else "NA",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if dark else "black",
                weight="bold" if np.isfinite(v) and v >= best.iloc[j] - 1e-12 else "normal",
            )
    for i, method in enumerate(df.index):
        y = -(i + 1) * cell_h
        ax.text(-0.1, y + cell_h / 2, method, ha="right", va="center", fontsize=10)
    # Group headers over the metric columns.
    start = 0
    for j in range(1, n_cols + 1):
        if j == n_cols or types.get(cols[j]) != types.get(cols[start]):
            x0, x1 = start * cell_w + 0.06, j * cell_w - 0.06
            ax.plot([x0, x1], [1.45 * cell_h] * 2, color="0.3", lw=1)
            ax.text((x0 + x1) / 2, 1.75 * cell_h, types.get(cols[start], ""), ha="center", fontsize=10)
            start = j
    return fig


def save_metrics(df: pd.DataFrame, out_dir: str | os.PathLike, *, dpi: int = 150) -> dict[str, Path]:
    """Write the metrics as ``metrics.csv`` and ``metrics_table.png`` into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    paths = {"csv": out_dir / METRICS_FILES["csv"], "table": out_dir / METRICS_FILES["table"]}
    with atomic_path(paths["csv"], mkdir=True) as tmp:
        df.to_csv(tmp, float_format="%.6g")
    fig = table_figure(df)
    with atomic_path(paths["table"], mkdir=True) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", facecolor="white")
    for path in paths.values():
        logger.info("wrote %s", path)
    return paths
