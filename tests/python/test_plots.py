"""Plots on a synthetic integrated AnnData (no training): what each figure shows, and the PNGs."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from pyscvibridge import PyscvibridgeError
from pyscvibridge.plots import PLOT_FILES, hvg_batches, save_plots, training_curve, umap_comparison

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def integrated() -> ad.AnnData:
    """What integrate() leaves behind: two UMAPs, HVG flags with per-batch support, the ELBO history."""
    rng = np.random.default_rng(0)
    n, g = 120, 40
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical(rng.choice(["b1", "b2", "b3"], n), categories=["b1", "b2", "b3"]),
            "cell_type": pd.Categorical(rng.choice(["T", "B", "NK", "Mono"], n)),
        },
        index=[f"c{i}" for i in range(n)],
    )
    adata = ad.AnnData(np.zeros((n, g), dtype=np.float32), obs=obs)
    adata.obsm["X_umap_unintegrated"] = rng.normal(size=(n, 2))
    adata.obsm["X_umap"] = rng.normal(size=(n, 2))
    hvg = np.zeros(g, dtype=bool)
    hvg[:25] = True
    nb = np.zeros(g, dtype=int)
    nb[:25] = [1] * 4 + [2] * 9 + [3] * 12
    adata.var["highly_variable"] = hvg
    adata.var["highly_variable_nbatches"] = nb
    adata.uns["scvi_integration"] = {
        "params": {"batch_key": "batch", "batch_key_used": "batch", "labels_key": "cell_type"},
        "history": {"elbo_train": np.linspace(900, 500, 12), "elbo_validation": np.linspace(950, 560, 12)},
    }
    return adata


def test_umap_comparison_shows_before_and_after_by_label_and_batch(integrated):
    fig = umap_comparison(integrated)
    axes = [ax for ax in fig.axes if ax.get_title()]
    titles = sorted(ax.get_title() for ax in axes)
    assert titles == [
        "Unintegrated (PCA): batch",
        "Unintegrated (PCA): cell_type",
        "scVI: batch",
        "scVI: cell_type",
    ]
    # every cell drawn in every panel, at the coordinates of its UMAP
    for ax in axes:
        (points,) = ax.collections[:1]
        xy = points.get_offsets()
        basis = "X_umap_unintegrated" if ax.get_title().startswith("Unintegrated") else "X_umap"
        assert len(xy) == integrated.n_obs
        assert np.allclose(np.sort(xy[:, 0]), np.sort(integrated.obsm[basis][:, 0]))
    legends = {ax.get_legend().get_title().get_text(): ax.get_legend() for ax in fig.axes if ax.get_legend()}
    assert [t.get_text() for t in legends["batch"].get_texts()] == ["b1", "b2", "b3"]
    assert sorted(t.get_text() for t in legends["cell_type"].get_texts()) == ["B", "Mono", "NK", "T"]


def test_umap_comparison_without_labels_shows_batch_only(integrated):
    integrated.uns["scvi_integration"]["params"]["labels_key"] = ""
    fig = umap_comparison(integrated)
    assert sorted(ax.get_title() for ax in fig.axes if ax.get_title()) == [
        "Unintegrated (PCA): batch",
        "scVI: batch",
    ]


def test_umap_comparison_names_missing_pieces(integrated):
    del integrated.obsm["X_umap"]
    with pytest.raises(PyscvibridgeError, match=r"X_umap.*integrate"):
        umap_comparison(integrated)
    with pytest.raises(PyscvibridgeError, match=r"'donor'.*Available columns: 'batch', 'cell_type'"):
        umap_comparison(integrated, batch_key="donor")


def test_hvg_batches_counts_highly_variable_genes_by_batch_support(integrated):
    fig = hvg_batches(integrated)
    (ax,) = fig.axes
    heights = [p.get_height() for p in ax.patches]
    centers = [round(p.get_x() + p.get_width() / 2) for p in ax.patches]
    assert centers == [1, 2, 3]
    assert heights == [4, 9, 12]  # non-HVGs (nbatches 0) are not counted
    assert "of 3" in ax.get_xlabel()


def test_training_curve_plots_the_elbo_history(integrated):
    fig = training_curve(integrated)
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    hist = integrated.uns["scvi_integration"]["history"]
    assert np.allclose(lines["training"].get_ydata(), hist["elbo_train"])
    assert np.allclose(lines["validation"].get_ydata(), hist["elbo_validation"])
    assert list(lines["training"].get_xdata()) == list(range(1, 13))
    integrated.uns["scvi_integration"]["history"] = {}
    with pytest.raises(PyscvibridgeError, match="training history"):
        training_curve(integrated)


def test_save_plots_writes_pngs_and_nothing_else(integrated, tmp_path):
    out = tmp_path / "new" / "plots"
    paths = save_plots(integrated, out)
    assert set(paths) == set(PLOT_FILES)
    assert sorted(p.name for p in out.iterdir()) == sorted(PLOT_FILES.values())
    for path in paths.values():
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 5_000


def test_save_plots_leaves_no_file_when_a_figure_fails(integrated, tmp_path):
    del integrated.var["highly_variable_nbatches"]
    with pytest.raises(PyscvibridgeError, match="highly_variable_nbatches"):
        save_plots(integrated, tmp_path / "plots")
    assert not (tmp_path / "plots").exists()
