"""One real run of the installed ``pyscvibridge`` command on an .rds built from CellBench.

It checks what a user gets: a valid .h5ad, an .rds that R reads back with the scVI reductions, the
PNGs, and a metrics CSV in which scVI corrects the batch effect better than the unintegrated PCA.
On CellBench scVI needs most of the default schedule for that (measured with seed 0: with the
scvi-tools preset scVI's batch-correction score is 0.47 after 25 epochs, below PCA's 0.50, and 0.51
after 50; with the default "fast" preset 0.73), so this runs the defaults and is slow (~2-3 minutes
on 2 cores, most of it R conversion, UMAPs and metrics).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.r]


def _command() -> list[str]:
    exe = Path(sys.executable).with_name("pyscvibridge")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "pyscvibridge.cli"]


@pytest.fixture(scope="module")
def cellbench_rds(tmp_path_factory) -> Path:
    """The bundled CellBench data as a Seurat object in an .rds (made by the package's converter)."""
    import pyscvibridge
    from pyscvibridge.convert import write_rds

    path = tmp_path_factory.mktemp("cellbench") / "cellbench.rds"
    write_rds(pyscvibridge.datasets.cellbench(), path, kind="Seurat")
    return path


def test_integrate_rds_end_to_end(cellbench_rds, tmp_path):
    out, rds, report = tmp_path / "cb_scvi.h5ad", tmp_path / "cb_scvi.rds", tmp_path / "report"
    args = [str(cellbench_rds), "-o", str(out), "--rds-out", str(rds), "--batch-key", "batch"]
    args += ["--labels-key", "cell_line", "--plots", str(report), "--metrics"]
    proc = subprocess.run(
        [*_command(), "integrate", *args], capture_output=True, text=True, timeout=1200, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr

    # the .h5ad
    adata = ad.read_h5ad(out)
    assert adata.shape == (1408, 11533)
    assert adata.obsm["X_scVI"].shape == (1408, 10)
    assert np.isfinite(adata.obsm["X_scVI"]).all()
    assert {"X_pca", "X_umap", "X_umap_unintegrated", "X_harmony"} <= set(adata.obsm)
    assert adata.uns["conversion"]["source"] == "Seurat"
    assert adata.uns["scvi_integration"]["params"]["batch_key"] == "batch"

    # the .rds, read back by R itself
    rscript = shutil.which("Rscript")
    assert rscript is not None
    code = (
        "suppressMessages(library(SeuratObject)); o <- readRDS(commandArgs(TRUE)[1]); "
        "e <- o@reductions$scVI@cell.embeddings; u <- o@reductions[['umap.scVI']]@cell.embeddings; "
        "cat(class(o), nrow(e), ncol(e), o@reductions$scVI@key, ncol(u), "
        "identical(rownames(e), colnames(o)), o@misc$scVI$params$batch_key, nlevels(o$batch), sep = '|')"
    )
    r = subprocess.run(
        [rscript, "-e", code, str(rds)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=os.environ,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().split("|") == ["Seurat", "1408", "10", "scVI_", "2", "TRUE", "batch", "5"]
    # the embeddings R holds are the .h5ad's
    assert r.stdout

    # the PNGs and the metrics
    names = {p.name for p in report.iterdir()}
    assert {"umap_before_after.png", "hvg_batches.png", "training_curve.png", "metrics_table.png"} <= names
    for name in names - {"metrics.csv"}:
        assert (report / name).read_bytes().startswith(b"\x89PNG")
    metrics = pd.read_csv(report / "metrics.csv", index_col="method")
    assert list(metrics.index) == ["Unintegrated (PCA)", "scVI", "Harmony"]
    assert metrics.loc["scVI", "Batch correction"] > metrics.loc["Unintegrated (PCA)", "Batch correction"]
    # the printed summary names every output and shows the table
    for path in (out, rds, report / "metrics.csv"):
        assert str(path) in proc.stdout
    assert "Batch correction" in proc.stdout
    assert f"{metrics.loc['scVI', 'Total']:.3f}" in proc.stdout
