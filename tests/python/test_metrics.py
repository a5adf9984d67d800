"""scib-metrics on synthetic embeddings whose answer is known: one mixes batches, one separates them."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from pyscvibridge import PyscvibridgeError
from pyscvibridge.metrics import (
    AGGREGATES,
    BATCH,
    BIO,
    METRICS_FILES,
    benchmark,
    format_table,
    harmony,
    save_metrics,
    table_figure,
)


@pytest.fixture(scope="module")
def two_embeddings() -> ad.AnnData:
    """X_pca: cell types apart but each batch shifted away (a batch effect); X_scVI: the same without it."""
    rng = np.random.default_rng(1)
    n, d = 300, 10
    labels = np.repeat(["T", "B", "Mono"], n // 3)
    batch = np.tile(["s1", "s2", "s3"], n // 3)
    centres = {"T": 0.0, "B": 8.0, "Mono": 16.0}
    shift = {"s1": 0.0, "s2": 3.0, "s3": 6.0}
    base = np.array([[centres[lab]] + [0.0] * (d - 1) for lab in labels])
    noise = rng.normal(scale=0.7, size=(n, d))
    offset = np.zeros((n, d))
    offset[:, 1] = [shift[b] for b in batch]
    obs = pd.DataFrame({"batch": pd.Categorical(batch), "cell_type": pd.Categorical(labels)})
    obs.index = [f"c{i}" for i in range(n)]
    adata = ad.AnnData(np.zeros((n, 3), dtype=np.float32), obs=obs)
    adata.obsm["X_pca"] = (base + noise + offset).astype(np.float32)
    adata.obsm["X_scVI"] = (base + noise).astype(np.float32)
    adata.uns["scvi_integration"] = {"params": {"batch_key": "batch", "labels_key": "cell_type"}}
    return adata


@pytest.fixture(scope="module")
def scores(two_embeddings) -> pd.DataFrame:
    return benchmark(two_embeddings, embeddings=("X_pca", "X_scVI"), run_harmony=False)


@pytest.mark.slow
def test_benchmark_scores_batch_mixing_and_bio_conservation(scores):
    assert list(scores.index) == ["Unintegrated (PCA)", "scVI"]
    assert list(scores.columns) == [*BIO, *[c for c in BATCH if c != "KBET"], *AGGREGATES]
    assert ((scores.to_numpy() >= 0) & (scores.to_numpy() <= 1)).all()
    pca, scvi = scores.loc["Unintegrated (PCA)"], scores.loc["scVI"]
    assert scvi["Batch correction"] > pca["Batch correction"] + 0.1
    assert scvi["iLISI"] > pca["iLISI"]
    assert pca["PCR comparison"] == 0  # the reference scores nothing against itself
    assert scvi["PCR comparison"] > 0.5
    # cell types are well apart in both: bio conservation is high in both
    assert min(pca["Bio conservation"], scvi["Bio conservation"]) > 0.7
    bio, bat = scores[list(BIO)].mean(axis=1), scores[[c for c in BATCH if c in scores]].mean(axis=1)
    assert np.allclose(scores["Bio conservation"], bio)
    assert np.allclose(scores["Batch correction"], bat)
    assert np.allclose(scores["Total"], 0.4 * bat + 0.6 * bio)
    assert scores.attrs["obsm_keys"] == {"Unintegrated (PCA)": "X_pca", "scVI": "X_scVI"}


@pytest.mark.slow
def test_harmony_removes_the_batch_shift(two_embeddings):
    adata = two_embeddings.copy()
    harmony(adata)
    h = adata.obsm["X_harmony"]
    assert h.shape == adata.obsm["X_pca"].shape
    assert np.isfinite(h).all()
    batch = adata.obs["batch"].to_numpy()
    spread = lambda x: np.ptp([x[batch == b, 1].mean() for b in ("s1", "s2", "s3")])  # noqa: E731
    assert spread(h) < 0.5 * spread(adata.obsm["X_pca"])


@pytest.mark.slow
def test_save_metrics_writes_csv_and_table(scores, tmp_path):
    paths = save_metrics(scores, tmp_path / "m")
    assert {p.name for p in paths.values()} == set(METRICS_FILES.values())
    back = pd.read_csv(paths["csv"], index_col="method")
    assert list(back.index) == list(scores.index)
    assert np.allclose(back.to_numpy(), scores.to_numpy(), rtol=1e-5)
    assert paths["table"].read_bytes().startswith(b"\x89PNG")
    text = format_table(scores)
    assert "Unintegrated (PCA)" in text
    assert f"{scores.loc['scVI', 'Total']:.3f}" in text
    fig = table_figure(scores)
    shown = {t.get_text() for t in fig.axes[0].texts}
    assert {"scVI", "Unintegrated (PCA)", "Bio conservation", "Batch correction"} <= shown
    assert f"{scores.loc['scVI', 'Total']:.2f}" in shown


def test_benchmark_needs_labels_and_known_columns(two_embeddings):
    adata = two_embeddings.copy()
    adata.uns["scvi_integration"]["params"] = {"batch_key": "batch"}
    with pytest.raises(PyscvibridgeError, match="labels_key"):
        benchmark(adata)
    with pytest.raises(PyscvibridgeError, match=r"'tissue'.*Available columns: 'batch', 'cell_type'"):
        benchmark(adata, labels_key="tissue")
    with pytest.raises(PyscvibridgeError, match=r"X_totalVI"):
        benchmark(adata, labels_key="cell_type", embeddings=("X_pca", "X_totalVI"))
