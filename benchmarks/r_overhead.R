# The R path's overhead: RunScVI() on a Seurat object and on a SingleCellExperiment, end to end,
# against the same Python pyscvibridge.integrate() call on the same data (the bundled CellBench,
# 1,408 cells x 11,533 genes), in the same R session and the same Python interpreter.
#
#   Rscript benchmarks/r_overhead.R [reps] [max_epochs]
#
# reps (default 3) runs of each path, interleaved; max_epochs (default: the package's default
# schedule) is passed to both. One untimed warm-up run of each path first (imports, numba JIT).
# Prints a table of medians: total time, overhead against Python and its share, and where the R
# path's extra time goes (reading the R object into AnnData, writing the reductions back plus the
# R-side checks). Needs the package installed and its Python (make setup).

args <- commandArgs(trailingOnly = TRUE)
options(width = 200)
reps <- if (length(args) >= 1) as.integer(args[[1]]) else 3L
max_epochs <- if (length(args) >= 2 && args[[2]] != "default") as.integer(args[[2]]) else NULL

suppressPackageStartupMessages({
  library(pyscvibridge)
  requireNamespace("SeuratObject")
  requireNamespace("SingleCellExperiment")
})
invisible(pyscvibridge:::.door()) # starts the package's Python in this session
seu <- cellbench("Seurat")
sce <- cellbench("SingleCellExperiment")

py <- reticulate::py_run_string(sprintf("
import time, warnings, logging
import pyscvibridge
from pyscvibridge import datasets

def python_integrate(max_epochs):
    adata = datasets.cellbench()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for name in ('lightning', 'lightning.pytorch', 'lightning.fabric', 'scvi'):
            logging.getLogger(name).setLevel(logging.ERROR)
        t0 = time.perf_counter()
        adata = pyscvibridge.integrate(adata, 'batch', max_epochs=max_epochs, seed=0, progress=False)
        seconds = time.perf_counter() - t0
    return [seconds, float(adata.uns['scvi_integration']['epochs_run'])]
"), convert = FALSE)

run_python <- function(epochs) {
  out <- reticulate::py_to_r(py$python_integrate(if (is.null(epochs)) NULL else as.integer(epochs)))
  c(total = out[[1]], read = 0, integrate = out[[1]], epochs = out[[2]])
}
run_r <- function(object, epochs) {
  t0 <- proc.time()[["elapsed"]]
  res <- RunScVI(object, batch_key = "batch", max_epochs = epochs, seed = 0, verbose = FALSE)
  total <- proc.time()[["elapsed"]] - t0
  prov <- if (methods::is(res, "Seurat")) res@misc$scVI else S4Vectors::metadata(res)$scVI
  c(
    total = total, read = prov$bridge$read_seconds, integrate = prov$bridge$integrate_seconds,
    epochs = prov$epochs_run
  )
}

paths <- list(
  "Python integrate()" = function(e) run_python(e),
  "R RunScVI(Seurat)" = function(e) run_r(seu, e),
  "R RunScVI(SCE)" = function(e) run_r(sce, e)
)
message("warm-up (2 epochs each)")
for (p in paths) invisible(p(2L))

times <- list()
for (i in seq_len(reps)) {
  order <- if (i %% 2) names(paths) else rev(names(paths))
  for (name in order) {
    message(sprintf("rep %d/%d: %s", i, reps, name))
    times[[name]] <- rbind(times[[name]], paths[[name]](max_epochs))
  }
}

med <- function(name, col) stats::median(times[[name]][, col])
py_total <- med("Python integrate()", "total")
rows <- lapply(names(paths), function(name) {
  total <- med(name, "total")
  read <- med(name, "read")
  integ <- med(name, "integrate")
  data.frame(
    path = name,
    epochs = med(name, "epochs"),
    total_s = total,
    overhead_s = total - py_total,
    overhead_pct = 100 * (total - py_total) / py_total,
    read_s = read,
    integrate_s = integ,
    write_and_r_s = total - read - integ,
    check.names = FALSE
  )
})
table <- do.call(rbind, rows)
cat(sprintf(
  "\nCellBench %d cells x %d genes; %d reps (median); max_epochs %s; %s; R %s, reticulate %s\n\n",
  ncol(sce), nrow(sce), reps, if (is.null(max_epochs)) "default" else max_epochs,
  sprintf("%d CPU cores", parallel::detectCores()), getRversion(), utils::packageVersion("reticulate")
))
print(format(table, digits = 3, nsmall = 2), row.names = FALSE)
cat("\noverhead = total - Python integrate() total; read = R object -> AnnData; integrate = the",
    "integrate() call inside the R path;\nwrite_and_r = the rest: reductions and provenance back into R,",
    "R-side checks, gc() and reticulate.\n")
