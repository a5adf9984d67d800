"""Batch columns of any type, NA in batches and labels, and batches or data sets too small to integrate."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from pyscvibridge import PyscvibridgeError, integrate
from pyscvibridge._genes import check_hvg_bins
from pyscvibridge._workflow import MIN_CELLS
from pyscvibridge.datasets import cellbench


@pytest.fixture(scope="module")
def small() -> ad.AnnData:
    """150 CellBench cells, 50 from each of three batches."""
    a = cellbench()
    codes = a.obs["batch"].cat.codes.to_numpy()
    idx = np.concatenate([np.flatnonzero(codes == c)[:50] for c in range(3)])
    return a[idx].copy()


def _with_batch(small, values) -> ad.AnnData:
    a = small.copy()
    a.obs["b"] = values
    return a


def _batch_values(small, kind: str):
    codes = small.obs["batch"].cat.codes.to_numpy()
    return {
        "int": codes.astype(np.int64) + 10,
        "bool": codes == 0,
        "str": np.array([f"plate {c}" for c in codes], dtype=object),
        "categorical": pd.Categorical(
            [f"plate {c}" for c in codes], categories=["plate 2", "plate 0", "plate 1"]
        ),
    }[kind]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["int", "bool", "str", "categorical"])
def test_batch_column_of_any_type(small, kind, tmp_path):
    """integrate() (and the plots) take integer, logical, string and categorical batch columns."""
    from pyscvibridge.plots import umap_comparison

    values = _batch_values(small, kind)
    adata = integrate(_with_batch(small, values), batch_key="b", max_epochs=1, n_top_genes=300)
    assert adata.obsm["X_scVI"].shape == (150, 10)
    n_batches = 2 if kind == "bool" else 3
    assert int(adata.var["highly_variable_nbatches"].max()) <= n_batches
    assert adata.var["highly_variable_nbatches"].max() == n_batches
    # the user's column is left as it was (type and values)
    assert adata.obs["b"].dtype == pd.Series(values).dtype
    assert adata.uns["scvi_integration"]["params"]["batch_key_used"] == "b"
    fig = umap_comparison(adata, batch_key="b")
    legend = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    expected = {
        "int": ["10", "11", "12"],
        "bool": ["False", "True"],
        "str": ["plate 0", "plate 1", "plate 2"],
        "categorical": ["plate 2", "plate 0", "plate 1"],
    }[kind]
    assert legend == expected


def test_na_in_the_batch_column_names_the_column_and_count(small):
    values = _batch_values(small, "int").astype(float)
    values[[3, 70, 140]] = np.nan
    with pytest.raises(PyscvibridgeError, match=r"batch_key 'b' has 3 missing \(NA\) values"):
        integrate(_with_batch(small, values), batch_key="b", max_epochs=1)
    strings = pd.array(_batch_values(small, "str"), dtype="string")
    strings[5] = pd.NA
    with pytest.raises(PyscvibridgeError, match=r"batch_key 'b' has 1 missing value \(NA\)"):
        integrate(_with_batch(small, strings), batch_key="b", max_epochs=1)


@pytest.mark.parametrize("n_tiny", [1, 2, 3, 4])
def test_tiny_batch_check_agrees_with_scanpy(small, n_tiny):
    """check_hvg_bins refuses exactly the batches scanpy's cell_ranger HVGs fail on."""
    import scanpy as sc

    from pyscvibridge._genes import log_normalise

    codes = small.obs["batch"].cat.codes.to_numpy()
    idx = np.concatenate([np.flatnonzero(codes == 0)[:n_tiny], np.flatnonzero(codes > 0)])
    a = small[idx]
    counts = a.X
    genes = np.asarray(counts.sum(axis=0)).ravel() > 0
    sub = ad.AnnData(
        X=log_normalise(counts, genes)[:, np.flatnonzero(genes)],
        obs=pd.DataFrame({"b": a.obs["batch"].cat.remove_unused_categories()}, index=a.obs_names),
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc.pp.highly_variable_genes(sub.copy(), flavor="cell_ranger", n_top_genes=300, batch_key="b")
        error = ""
    except ValueError as e:
        error = str(e)
    assert error == "" or "Bin edges must be unique" in error
    scanpy_fails = bool(error)
    if scanpy_fails:
        first = str(a.obs["batch"].cat.categories[0])
        with pytest.raises(
            PyscvibridgeError, match=rf"batch\(es\) '{first}' \({n_tiny} cells?\) have too few"
        ):
            check_hvg_bins(sub, "b")
    else:
        check_hvg_bins(sub, "b")
    if n_tiny == 1:
        assert scanpy_fails  # a one-cell batch always fails: the case the check exists for


def test_tiny_batch_is_refused_before_training(small):
    codes = small.obs["batch"].cat.codes.to_numpy()
    idx = np.concatenate([np.flatnonzero(codes == 0)[:1], np.flatnonzero(codes > 0)])
    adata = small[idx].copy()
    name = str(adata.obs["batch"].iloc[0])
    with pytest.raises(
        PyscvibridgeError, match=rf"batch\(es\) '{name}' \(1 cell\) have too few cells"
    ) as info:
        integrate(adata, batch_key="batch", max_epochs=1, n_top_genes=300)
    assert "merge them" in str(info.value)
    assert "X_scVI" not in adata.obsm


@pytest.mark.parametrize("n", [1, 3, MIN_CELLS - 1])
def test_too_few_cells_in_all(small, n):
    with pytest.raises(PyscvibridgeError, match=rf"has {n} cells; integrate\(\) needs at least {MIN_CELLS}"):
        integrate(small[:n].copy(), batch_key="batch", max_epochs=1)


@pytest.mark.slow
def test_na_labels_are_allowed_and_unlabeled_for_scanvi(small):
    from pyscvibridge import train_scanvi

    adata = small.copy()
    labels = adata.obs["cell_line"].astype(object).to_numpy()
    labels[::4] = None
    adata.obs["cell_line"] = pd.Categorical(labels)
    adata, model = integrate(
        adata, batch_key="batch", labels_key="cell_line", max_epochs=1, n_top_genes=300, return_model=True
    )
    adata = train_scanvi(adata, model, labels_key="cell_line", max_epochs=1, umap=False, return_model=False)
    record = adata.uns["scanvi"]
    assert record["n_unlabelled"] == 38  # every 4th of 150 cells
    assert record["n_labelled"] == 112
    assert adata.obs["scanvi_prediction"].notna().all()
    assert set(adata.obs["scanvi_prediction"].astype(str)) <= set(record["classes"])


@pytest.mark.slow
def test_metrics_leave_na_labels_out():
    """Cells without a label are left out of the label scores: the scores equal those without the cells."""
    from pyscvibridge.metrics import _score

    rng = np.random.default_rng(0)
    n = 240
    labels = np.repeat([0, 1, 2], n // 3)
    batch = np.tile([0, 1], n // 2)
    x = (labels[:, None] * 6.0 + rng.normal(size=(n, 5))).astype(np.float32)
    keep = np.ones(n, dtype=bool)
    keep[::5] = False
    full = _score(x, x, labels, batch, kbet=False, seed=0, labelled=keep)
    sub = _score(x[keep], x[keep], labels[keep], batch[keep], kbet=False, seed=0)
    for name in ("KMeans NMI", "Silhouette label", "cLISI", "BRAS", "Isolated labels", "Graph connectivity"):
        assert full[name] == pytest.approx(sub[name], abs=1e-6), name


@pytest.mark.slow
def test_benchmark_warns_about_na_labels():
    from pyscvibridge.metrics import benchmark

    rng = np.random.default_rng(1)
    n = 120
    labels = np.repeat(["T", "B", "Mono"], n // 3).astype(object)
    labels[:7] = None
    obs = pd.DataFrame(
        {"batch": np.tile([1, 2], n // 2), "cell_type": pd.Categorical(labels)},
        index=[f"c{i}" for i in range(n)],
    )
    adata = ad.AnnData(np.zeros((n, 2), dtype=np.float32), obs=obs)
    adata.obsm["X_pca"] = rng.normal(size=(n, 4)).astype(np.float32)
    with pytest.warns(UserWarning, match=r"7 of 120 cells have no label \(NA in labels_key 'cell_type'\)"):
        df = benchmark(
            adata, batch_key="batch", labels_key="cell_type", embeddings=("X_pca",), run_harmony=False
        )
    assert np.isfinite(df.to_numpy()).all()
    adata.obs["cell_type"] = pd.Categorical([None] * n, categories=["T"])
    with pytest.raises(PyscvibridgeError, match="NA for every cell"):
        benchmark(adata, batch_key="batch", labels_key="cell_type", embeddings=("X_pca",), run_harmony=False)


def test_batch_categories_are_strings_in_value_order():
    """The model's batches: strings (as map_query gives a query's), ordered by value or by the factor."""
    from pyscvibridge._checks import as_categories

    ints = as_categories(pd.Series([10, 2, 2, 10]))
    assert list(ints.cat.categories) == ["2", "10"]
    assert list(ints) == ["10", "2", "2", "10"]
    assert list(as_categories(pd.Series([True, False, True])).cat.categories) == ["False", "True"]
    cat = pd.Series(pd.Categorical(["b", "a"], categories=["b", "z", "a"]))
    assert list(as_categories(cat).cat.categories) == ["b", "a"]  # order kept, unused dropped
    mixed = as_categories(pd.Series(["x", 1, "x"], dtype=object))
    assert list(mixed.cat.categories) == ["1", "x"]
