"""The bundled CellBench data and the BMMC download, cache and checksum logic (against a local server)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import pyscvibridge as psb
from pyscvibridge.datasets import _bmmc


def test_cellbench_is_the_real_mixture():
    adata = psb.datasets.cellbench()
    assert adata.shape == (1408, 11533)
    assert list(adata.obs["batch"].cat.categories) == [
        "CEL-seq2_3cl",
        "Drop-seq_3cl",
        "CEL-seq2_5cl_p1",
        "CEL-seq2_5cl_p2",
        "CEL-seq2_5cl_p3",
    ]
    assert adata.obs["batch"].value_counts().to_dict() == {
        "CEL-seq2_3cl": 274,
        "Drop-seq_3cl": 225,
        "CEL-seq2_5cl_p1": 297,
        "CEL-seq2_5cl_p2": 307,
        "CEL-seq2_5cl_p3": 305,
    }
    assert list(adata.obs["cell_line"].cat.categories) == ["H2228", "H1975", "HCC827", "A549", "H838"]
    assert adata.obs["demuxlet_cls"].value_counts().to_dict() == {"SNG": 1021, "DBL": 387}
    assert adata.obs_names.is_unique
    assert adata.obs_names[0] == "CEL-seq2_3cl_A1"
    assert adata.var_names[0].startswith("ENSG")
    counts = adata.layers["counts"]
    assert sp.issparse(counts)
    assert np.array_equal(counts.data, np.round(counts.data))
    assert counts.data.min() > 0
    # library sizes agree with the authors' per-cell totals, which also count genes outside the join
    lib = np.asarray(counts.sum(axis=1)).ravel()
    assert (lib <= adata.obs["total_count_per_cell"].to_numpy()).all()
    assert np.median(lib / adata.obs["total_count_per_cell"].to_numpy()) > 0.9


# --- the download: a small stand-in for the BMMC file, served from this machine -----------------------


@pytest.fixture
def bmmc_like(tmp_path):
    """A small file with the BMMC file's layout: batches, cell types, GEX + ATAC features, counts layer."""
    rng = np.random.default_rng(0)
    batches = ["s1d1", "s1d3", "s2d1", "s3d7"]
    obs = pd.DataFrame(
        {"batch": pd.Categorical(np.repeat(batches, 5)), "cell_type": pd.Categorical(["B", "T"] * 10)},
        index=[f"c{i}" for i in range(20)],
    )
    var = pd.DataFrame({"feature_types": ["GEX"] * 6 + ["ATAC"] * 4}, index=[f"g{i}" for i in range(10)])
    counts = sp.csr_matrix(rng.poisson(2, size=(20, 10)).astype(np.float32))
    adata = ad.AnnData(X=counts.copy(), obs=obs, var=var, layers={"counts": counts})
    served = tmp_path / "served"
    served.mkdir()
    adata.write_h5ad(served / "45452260")
    return served


@pytest.fixture
def server(bmmc_like):
    """An HTTP server on 127.0.0.1 serving ``bmmc_like``; yields (base URL, list of requested paths)."""
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(bmmc_like)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()


def test_bmmc_downloads_once_then_uses_the_cache(server, tmp_path):
    base, requests = server
    cache = tmp_path / "cache"
    adata = psb.datasets.openproblems_bmmc(url=f"{base}/45452260", cache=cache)
    # the tutorial's subset: three batches, gene-expression features only
    assert sorted(adata.obs["batch"].cat.categories) == ["s1d3", "s2d1", "s3d7"]
    assert adata.shape == (15, 6)
    assert set(adata.var["feature_types"]) == {"GEX"}
    assert len(requests) == 1
    full = psb.datasets.openproblems_bmmc(url=f"{base}/45452260", cache=cache, subset=False)
    assert full.shape == (20, 10)
    assert len(requests) == 1, "the second call must read the cache, not download again"
    assert [p.name for p in cache.iterdir() if p.name.endswith(".part")] == []


def test_bmmc_checksum_mismatch_keeps_nothing(server, tmp_path):
    base, _ = server
    cache = tmp_path / "cache"
    with pytest.raises(psb.PyscvibridgeError, match=r"sha256 .* expected 0{64}"):
        psb.datasets.openproblems_bmmc(url=f"{base}/45452260", cache=cache, sha256="0" * 64)
    assert list(cache.iterdir()) == []


def test_bmmc_right_checksum_is_accepted(server, bmmc_like, tmp_path):
    base, _ = server
    digest = hashlib.sha256((bmmc_like / "45452260").read_bytes()).hexdigest()
    adata = psb.datasets.openproblems_bmmc(url=f"{base}/45452260", cache=tmp_path, sha256=digest)
    assert adata.n_obs == 15


def test_bmmc_corrupted_cache_is_reported(server, tmp_path):
    base, _ = server
    psb.datasets.openproblems_bmmc(url=f"{base}/45452260", cache=tmp_path)
    cached = tmp_path / _bmmc.BMMC_FILENAME
    cached.write_bytes(cached.read_bytes()[:100])
    with pytest.raises(psb.PyscvibridgeError, match=r"corrupt or not the expected one.*Delete it"):
        psb.datasets.openproblems_bmmc(url=f"{base}/45452260", cache=tmp_path)


def test_bmmc_offline_says_how_to_place_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PYSCVIBRIDGE_CACHE", str(tmp_path))
    # a port nobody listens on: the connection is refused at once, like an offline machine
    with pytest.raises(psb.PyscvibridgeError, match="place it by hand at") as err:
        psb.datasets.openproblems_bmmc(url="http://127.0.0.1:9/45452260")
    assert str(tmp_path / _bmmc.BMMC_FILENAME) in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_bmmc_file_placed_by_hand_is_used_offline(bmmc_like, tmp_path, monkeypatch):
    monkeypatch.setenv("PYSCVIBRIDGE_CACHE", str(tmp_path))
    (tmp_path / _bmmc.BMMC_FILENAME).write_bytes((bmmc_like / "45452260").read_bytes())
    adata = psb.datasets.openproblems_bmmc(url="http://127.0.0.1:9/unreachable")
    assert adata.n_obs == 15


def test_bmmc_wrong_file_is_reported(tmp_path):
    other = ad.AnnData(X=np.ones((3, 2), dtype=np.float32))
    other.write_h5ad(tmp_path / _bmmc.BMMC_FILENAME)
    with pytest.raises(psb.PyscvibridgeError, match="not the OpenProblems BMMC file"):
        psb.datasets.openproblems_bmmc(cache=tmp_path, url="http://127.0.0.1:9/x")
