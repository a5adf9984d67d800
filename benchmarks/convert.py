"""Time and peak memory of R <-> AnnData conversion: pyscvibridge.convert vs stock anndata2ri.

Builds a 20,000 genes x 20,000 cells dgCMatrix with 40M non-zeros (about 480 MB: x float64, i int32)
in the embedded R session, wraps it as a SingleCellExperiment (and a Seurat v4 object), and
measures in one process:

- R -> AnnData: ``pyscvibridge.convert.from_r`` (views R's arrays) vs anndata2ri's rpy2py;
- AnnData -> R: ``pyscvibridge.convert.to_r`` vs anndata2ri's py2rpy, against a plain NumPy copy
  of the CSR arrays as the reference for "one copy"; and the count matrix alone (CSR -> a new
  ``dgCMatrix``), which is the copy itself without the object's fixed costs, into buffer vectors
  (the R package's; ``src/buffers.c``) and, for comparison, into vectors R allocates (the path
  without the R package); and one full ``gc()``, which R runs when a large allocation outgrows its
  heap;
- handing an object to R code under a name: ``convert.assign`` vs rpy2's ``globalenv[name] = obj``
  (which duplicates the object).

Peak memory is the process's resident-set high-water mark above its size before the step
(``/proc/self/clear_refs`` resets the mark; Linux only). Usage::

    .venv/bin/python benchmarks/convert.py [--nnz-per-cell 2000] [--n 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import time
import warnings

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def r_gc() -> None:
    import rpy2.rinterface as ri

    gc.collect()
    ri.baseenv["gc"]()


FIRST: dict[int, float] = {}


def measure(fn, repeats: int):
    """(best seconds, peak MB above the start) over ``repeats`` runs; the result of the last run.

    The first run's time goes to ``FIRST[id(fn)]``: it includes the page faults of memory the
    process has not used before, which later runs may reuse.
    """
    best, peak, out = float("inf"), 0.0, None
    for k in range(repeats):
        out = None
        r_gc()
        start = rss_mb()
        reset_peak()
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        if k == 0:
            FIRST[id(fn)] = dt
        best = min(best, dt)
        peak = max(peak, hwm_mb() - start)
    return best, peak, out


def build_csr(n: int, per_row: int, seed: int = 0):
    """cells x genes CSR with ``per_row`` sorted distinct columns per row (one per stride bucket)."""
    from scipy import sparse

    rng = np.random.default_rng(seed)
    stride = n // per_row
    cols = (
        np.arange(per_row, dtype=np.int32) * stride
        + rng.integers(0, stride, size=(n, per_row), dtype=np.int32)
    ).ravel()
    data = rng.poisson(1.0, size=n * per_row).astype(np.float64) + 1.0
    indptr = np.arange(0, n * per_row + 1, per_row, dtype=np.int32)
    return sparse.csr_matrix((data, cols, indptr), shape=(n, n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="genes = cells")
    parser.add_argument("--nnz-per-cell", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    warnings.filterwarnings("ignore")

    import anndata as ad
    import anndata2ri
    import rpy2.robjects as ro
    from rpy2.robjects.conversion import localconverter

    from pyscvibridge.convert import _r, _sparse, assign, from_r, to_r

    @contextlib.contextmanager
    def without_r_package():  # the path taken when R cannot find the R package (R allocates)
        found = _sparse._buffer_routine
        _sparse._buffer_routine = lambda: None
        try:
            yield
        finally:
            _sparse._buffer_routine = found

    n = args.n
    csr = build_csr(n, args.nnz_per_cell)
    genes = [f"g{i}" for i in range(n)]
    cells = [f"c{i}" for i in range(n)]
    print(
        f"matrix: {n} genes x {n} cells, {csr.nnz / 1e6:.0f}M non-zeros, "
        f"{(csr.data.nbytes + csr.indices.nbytes + csr.indptr.nbytes) / 1e6:.0f} MB (x float64, i/p int32)"
    )

    dgc = _sparse.csr_to_dgc(csr, genes, cells)
    ro.globalenv["m"] = dgc
    ro.r("suppressMessages({library(SingleCellExperiment); library(SeuratObject)})")
    sce = ro.r("sce <- SingleCellExperiment(list(counts = m)); sce")
    seu = ro.r("seu <- suppressWarnings(CreateSeuratObject(m)); seu")
    ro.r("rm(m)")

    rows = []

    def ours_only(name, fn):
        """Measure a step stock anndata2ri has no counterpart for; add its row; return its result."""
        t, m, out = measure(fn, args.repeats)
        first[name] = (FIRST[id(fn)], float("nan"))
        rows.append((name, t, m, float("nan"), float("nan")))
        return out

    def ours_sce():
        return from_r(sce)

    def ours_seurat():
        return from_r(seu)

    def stock_sce():
        with localconverter(anndata2ri.converter):
            return ro.conversion.get_conversion().rpy2py(sce)

    t_o, m_o, a_o = measure(ours_sce, args.repeats)
    t_s, m_s, a_s = measure(stock_sce, args.repeats)
    first = {"R -> AnnData (SCE)": (FIRST[id(ours_sce)], FIRST[id(stock_sce)])}
    assert a_o.shape == a_s.shape == (n, n)
    assert (a_o.X != a_s.X).nnz == 0, "ours and anndata2ri disagree"
    rows.append(("R -> AnnData (SCE)", t_o, m_o, t_s, m_s))
    ours_only("R -> AnnData (Seurat v4)", ours_seurat)
    del a_o, a_s

    adata = ad.AnnData(X=csr, obs={"cell": cells}, var={"gene": genes})
    adata.obs_names, adata.var_names = cells, genes

    def plain_copy():
        return csr.data.copy(), csr.indices.copy(), csr.indptr.copy()

    ours_only("plain copy of the 3 arrays", plain_copy)

    def r_full_gc():  # one full garbage collection of this R session (SCE, SeuratObject loaded)
        return ro.r("gc(full = TRUE)")

    ours_only("R full gc()", r_full_gc)

    def ours_to_dgc():
        return _sparse.csr_to_dgc(csr, genes, cells)

    ours_only("AnnData X -> dgCMatrix", ours_to_dgc)

    def ours_to_dgc_r_alloc():
        with without_r_package():
            return _sparse.csr_to_dgc(csr, genes, cells)

    ours_only("... without the R package", ours_to_dgc_r_alloc)

    def ours_to_sce():
        return to_r(adata, kind="SingleCellExperiment")

    def stock_to_sce():
        with localconverter(anndata2ri.converter):
            return ro.conversion.get_conversion().py2rpy(adata)

    t_o, m_o, s_o = measure(ours_to_sce, args.repeats)
    t_s, m_s, s_s = measure(stock_to_sce, 1)
    first["AnnData -> R (SCE)"] = (FIRST[id(ours_to_sce)], FIRST[id(stock_to_sce)])
    ro.globalenv["s_o"], ro.globalenv["s_s"] = s_o, s_s
    same = ro.r("identical(as(assay(s_o, 'X'), 'dgCMatrix')@x, as(assay(s_s, 'X'), 'dgCMatrix')@x)")[0]
    assert same, "ours and anndata2ri disagree (AnnData -> SCE)"
    rows.append(("AnnData -> R (SCE)", t_o, m_o, t_s, m_s))
    del s_o, s_s
    ro.r("rm(s_o, s_s)")

    sce_obj = to_r(adata, kind="SingleCellExperiment")

    def bind_assign():  # hand an object to R code under a name: convert.assign binds it
        assign("bound", sce_obj)

    def bind_rpy2():  # rpy2's env[name] = obj duplicates the object first
        ro.globalenv["bound"] = sce_obj

    ours_only("bind SCE: convert.assign", bind_assign)
    ours_only("bind SCE: rpy2 env[] =", bind_rpy2)
    ro.r("rm(bound)")
    sce_obj = None  # free it before the Seurat rows

    def ours_to_seurat():
        return to_r(adata, kind="Seurat")

    ours_only("AnnData -> R (Seurat)", ours_to_seurat)

    print()
    head = (
        f"{'step':<28} {'ours s':>8} {'ours 1st':>9} {'ours MB':>8} {'stock s':>8} {'stock 1st':>10} "
        f"{'stock MB':>9} {'speed-up':>9}"
    )
    print(head)
    print("-" * len(head))

    def fmt(v, w, p):
        return f"{v:>{w}.{p}f}" if np.isfinite(v) else f"{'-':>{w}}"

    for name, t1, m1, t2, m2 in rows:
        f1, f2 = first[name]
        ratio = t2 / t1 if np.isfinite(t2) else float("nan")
        print(
            f"{name:<28} {fmt(t1, 8, 3)} {fmt(f1, 9, 3)} {fmt(m1, 8, 0)} {fmt(t2, 8, 3)} {fmt(f2, 10, 3)} "
            f"{fmt(m2, 9, 0)} {fmt(ratio, 8, 1)}x"
        )
    by_name = {r[0]: r for r in rows}
    copy_t, copy_first = by_name["plain copy of the 3 arrays"][1], first["plain copy of the 3 arrays"][0]
    print()
    for name in ("AnnData X -> dgCMatrix", "... without the R package", "AnnData -> R (SCE)"):
        print(
            f"{name}, ours / plain copy: {by_name[name][1] / copy_t:.2f}x best, "
            f"{first[name][0] / copy_first:.2f}x first run (target <= 1.5x)"
        )
    print(
        f"s = best of {args.repeats} (stock AnnData -> R: 1 run); 1st = first run; "
        "MB = peak resident memory above the start of the step"
    )
    _r.ri()


if __name__ == "__main__":
    main()
