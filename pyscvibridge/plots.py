"""Figures that show whether an integration worked (matplotlib, no display needed).

Every function takes the AnnData returned by :func:`pyscvibridge.integrate` and returns a
:class:`matplotlib.figure.Figure`; :func:`save_plots` writes them all as PNGs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._atomic import atomic_path
from ._conventions import UNS_INTEGRATION
from ._errors import PyscvibridgeError

if TYPE_CHECKING:
    import anndata as ad
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger("pyscvibridge")

UNS_KEY = UNS_INTEGRATION
#: The file names :func:`save_plots` writes, by figure.
PLOT_FILES = {
    "umap": "umap_before_after.png",
    "hvg_batches": "hvg_batches.png",
    "training_curve": "training_curve.png",
}


def _figure(*args, **kwargs) -> tuple[Figure, np.ndarray]:
    """A figure that needs no display (Agg canvas) and is not kept by pyplot's figure manager."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(*args, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _params(adata: ad.AnnData) -> dict:
    return dict(adata.uns.get(UNS_KEY, {}).get("params", {}))


def _keys(adata: ad.AnnData, batch_key: str | None, labels_key: str | None) -> tuple[str, str | None]:
    """The batch and label columns: given, or those :func:`~pyscvibridge.integrate` recorded."""
    params = _params(adata)
    batch_key = batch_key or params.get("batch_key") or None
    labels_key = labels_key or params.get("labels_key") or None
    if batch_key is None:
        msg = "No batch_key given and none recorded in .uns['scvi_integration']; pass batch_key=..."
        raise PyscvibridgeError(msg)
    for what, key in (("batch_key", batch_key), ("labels_key", labels_key)):
        if key is not None and key not in adata.obs:
            cols = ", ".join(repr(c) for c in adata.obs.columns) or "none"
            msg = f"{what} {key!r} is not a column of .obs. Available columns: {cols}."
            raise PyscvibridgeError(msg)
    return batch_key, labels_key


def _require_obsm(adata: ad.AnnData, *keys: str) -> None:
    missing = [k for k in keys if k not in adata.obsm]
    if missing:
        msg = (
            f"The AnnData has no .obsm{missing}; run pyscvibridge.integrate(adata, batch_key) first "
            f"(.obsm holds {list(adata.obsm)})."
        )
        raise PyscvibridgeError(msg)


def _palette(n: int) -> list:
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    return [colormaps["nipy_spectral"](x) for x in np.linspace(0.05, 0.95, n)]


def _categories(values) -> tuple[list[str], np.ndarray]:
    import pandas as pd

    cat = pd.Categorical(values)
    return [str(c) for c in cat.categories], np.asarray(cat.codes)


def _scatter(ax: Axes, xy: np.ndarray, codes: np.ndarray, colors: list, size: float) -> None:
    # Shuffled drawing order: no batch or label is hidden under the others.
    order = np.random.default_rng(0).permutation(len(codes))
    rgba = np.array([colors[c] if c >= 0 else (0.8, 0.8, 0.8, 1.0) for c in codes[order]])
    ax.scatter(xy[order, 0], xy[order, 1], c=rgba, s=size, linewidths=0, rasterized=True)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def umap_comparison(
    adata: ad.AnnData,
    *,
    batch_key: str | None = None,
    labels_key: str | None = None,
    before: str = "X_umap_unintegrated",
    after: str = "X_umap",
    point_size: float | None = None,
) -> Figure:
    """UMAP before (unintegrated PCA) and after (scVI) integration, coloured by batch and by label.

    Rows are before / after, columns the colourings; each colouring keeps its colours and legend
    across rows, so a batch or a cell type can be followed from one UMAP to the other.

    Parameters
    ----------
    adata
        Output of :func:`pyscvibridge.integrate`.
    batch_key, labels_key
        ``obs`` columns to colour by; default the ones ``integrate`` recorded. Without labels only
        the batch is shown.
    before, after
        ``obsm`` keys of the two UMAPs.
    point_size
        Marker size; default scales with the number of cells.
    """
    batch_key, labels_key = _keys(adata, batch_key, labels_key)
    _require_obsm(adata, before, after)
    colourings = [(labels_key, "label"), (batch_key, "batch")] if labels_key else [(batch_key, "batch")]
    size = point_size or float(np.clip(12000 / max(adata.n_obs, 1), 0.5, 12))
    ncol = len(colourings)
    fig = _figure(figsize=(5.2 * ncol + 0.5, 10), layout="constrained")
    axes = fig.subplots(2, ncol, squeeze=False)
    rows = [(before, "Unintegrated (PCA)"), (after, "scVI")]
    for col, (key, _) in enumerate(colourings):
        names, codes = _categories(adata.obs[key])
        colors = _palette(len(names))
        for row, (basis, title) in enumerate(rows):
            ax = axes[row, col]
            _scatter(ax, np.asarray(adata.obsm[basis])[:, :2], codes, colors, size)
            ax.set_title(f"{title}: {key}", fontsize=12)
            ax.set_xlabel("UMAP 1", fontsize=9)
            ax.set_ylabel("UMAP 2", fontsize=9)
        handles = [
            axes[1, col].scatter([], [], color=colors[i], s=40, label=name) for i, name in enumerate(names)
        ]
        axes[1, col].legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.08),
            ncol=min(3, len(names)) if max(map(len, names), default=0) < 14 else min(2, len(names)),
            frameon=False,
            fontsize=9,
            title=key,
        )
    fig.suptitle(f"Before and after scVI integration ({adata.n_obs:,} cells)", fontsize=14)
    return fig


def hvg_batches(adata: ad.AnnData) -> Figure:
    """Bar chart: how many highly variable genes are variable in 1, 2, ..., all batches.

    Many genes variable in a single batch mean a strong batch effect; the genes scVI trains on are
    the highly variable ones (``var["highly_variable"]``), ranked first by this number.
    """
    for col in ("highly_variable", "highly_variable_nbatches"):
        if col not in adata.var:
            msg = f"The AnnData has no .var[{col!r}]; run pyscvibridge.integrate(adata, batch_key) first."
            raise PyscvibridgeError(msg)
    hvg = adata.var["highly_variable"].to_numpy(dtype=bool)
    nb = adata.var["highly_variable_nbatches"].to_numpy()[hvg].astype(int)
    params = _params(adata)
    batch_key = params.get("batch_key_used") or params.get("batch_key")
    n_batches = int(adata.obs[batch_key].nunique()) if batch_key in adata.obs else int(nb.max(initial=1))
    xs = np.arange(1, max(n_batches, int(nb.max(initial=1))) + 1)
    counts = np.array([(nb == x).sum() for x in xs])
    fig = _figure(figsize=(max(4.5, 0.7 * len(xs) + 2.5), 4), layout="constrained")
    ax = fig.subplots()
    bars = ax.bar(xs, counts, color="#4C72B0", width=0.7)
    ax.bar_label(bars, fontsize=9, padding=2)
    ax.set_xticks(xs)
    ax.set_xlabel(f"number of batches the gene is highly variable in (of {n_batches})")
    ax.set_ylabel("highly variable genes")
    ax.set_title(f"{int(hvg.sum()):,} highly variable genes by batch support")
    ax.margins(y=0.12)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def training_curve(adata: ad.AnnData) -> Figure:
    """scVI's ELBO per epoch on the training and validation cells (lower is better)."""
    history = adata.uns.get(UNS_KEY, {}).get("history", {})
    if "elbo_train" not in history:
        msg = (
            "The AnnData has no training history in .uns['scvi_integration']['history']; "
            "run pyscvibridge.integrate(adata, batch_key) first."
        )
        raise PyscvibridgeError(msg)
    fig = _figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for key, label, color in (
        ("elbo_train", "training", "#4C72B0"),
        ("elbo_validation", "validation", "#DD8452"),
    ):
        if key in history and len(history[key]):
            y = np.asarray(history[key], dtype=float)
            ax.plot(
                np.arange(1, len(y) + 1), y, label=label, color=color, marker="o" if len(y) < 20 else None
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel("negative ELBO per cell")
    ax.set_title("scVI training")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def save_plots(
    adata: ad.AnnData,
    out_dir: str | os.PathLike,
    *,
    batch_key: str | None = None,
    labels_key: str | None = None,
    dpi: int = 150,
) -> dict[str, Path]:
    """Write the UMAP comparison, the HVG batch chart and the training curve as PNGs into ``out_dir``.

    Each file is written atomically (temporary file, then rename). Returns ``{figure name: path}``
    with the names of :data:`PLOT_FILES`.
    """
    out_dir = Path(out_dir)
    figures = {
        "umap": umap_comparison(adata, batch_key=batch_key, labels_key=labels_key),
        "hvg_batches": hvg_batches(adata),
        "training_curve": training_curve(adata),
    }
    paths = {}
    for name, fig in figures.items():
        path = out_dir / PLOT_FILES[name]
        with atomic_path(path, mkdir=True) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", facecolor="white")
        paths[name] = path
        logger.info("wrote %s", path)
    return paths
