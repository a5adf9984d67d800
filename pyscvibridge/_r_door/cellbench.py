"""``load_cellbench``: what the R package's ``cellbench()`` calls."""

from __future__ import annotations

import time

from ._handoff import Emit, answer, bridge_env, sayer


def load_cellbench(bridge, *, kind: str = "seurat", verbose: bool = False, emit: Emit | None = None) -> dict:
    """Bind the bundled CellBench data as ``<bridge>$result``: a Seurat object or a SingleCellExperiment.

    It is made by :func:`pyscvibridge.convert.to_r` from :func:`pyscvibridge.datasets.cellbench`
    (raw counts only; with SeuratObject 4 a v4 ``Assay``).
    """
    say = sayer(verbose, emit)

    def load() -> dict:
        from .. import convert, datasets

        started = time.perf_counter()
        env = bridge_env(bridge)
        adata = datasets.cellbench()
        r_kind = "Seurat" if kind == "seurat" else "SingleCellExperiment"
        say(f"CellBench: {adata.n_obs} cells x {adata.n_vars} genes, as a {r_kind}")
        convert.assign("result", convert.to_r(adata, kind=r_kind), envir=env)
        return {"n_cells": int(adata.n_obs), "seconds": time.perf_counter() - started}

    return answer(load, verbose, say)
