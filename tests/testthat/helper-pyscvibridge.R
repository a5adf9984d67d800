# Shared test helpers: skipping without Python, fixtures, and comparing objects before/after.

# Skip when no Python with pyscvibridge can be found, except where one was promised
# (PYSCVIBRIDGE_PYTHON set, as by the Makefile and CI): there the tests must run.
skip_if_no_python <- function() {
  if (nzchar(Sys.getenv("PYSCVIBRIDGE_PYTHON"))) {
    return(invisible(TRUE))
  }
  skip_if_not(scvi_available(), "no Python with pyscvibridge (run `make setup`)")
}

skip_if_no_seurat_object <- function() {
  skip_if_not_installed("SeuratObject")
}

# Where a vector's data live (from R's inspect output): equal addresses mean one shared vector,
# not a copy.
vector_address <- function(x) {
  sub(" .*", "", utils::capture.output(.Internal(inspect(x)))[1])
}

fixture_path <- function(name) {
  # tests/fixtures (R CMD check copies the whole tests/ folder, so this holds there too)
  path <- test_path("..", "fixtures", name)
  skip_if_not(file.exists(path), paste("fixture", name, "not found"))
  path
}

read_fixture <- function(name) {
  suppressPackageStartupMessages(requireNamespace("SeuratObject", quietly = TRUE))
  readRDS(fixture_path(name))
}

# A layer of a v5 Assay5 as a dgCMatrix with its feature and cell names (read from the slots,
# which works whether SeuratObject 4 or 5 is installed).
v5_layer <- function(object, layer, assay = "RNA") {
  a <- object@assays[[assay]]
  m <- a@layers[[layer]]
  dimnames(m) <- list(
    rownames(a@features)[a@features[, layer]],
    rownames(a@cells)[a@cells[, layer]]
  )
  m
}

# CellBench (400 cells, 2,000 genes) as a Seurat v4 object, built with Seurat 4's own functions
# from the v5 fixture's counts and metadata.
cellbench_v4 <- function() {
  skip_if_not_installed("Seurat")
  v5 <- read_fixture("cellbench_small_v5.rds")
  meta <- v5@meta.data
  obj <- suppressWarnings(SeuratObject::CreateSeuratObject(v5_layer(v5, "counts"), meta.data = meta))
  suppressWarnings(Seurat::NormalizeData(obj, verbose = FALSE))
}

cellbench_sce <- function() {
  skip_if_not_installed("SingleCellExperiment")
  v5 <- read_fixture("cellbench_small_v5.rds")
  counts <- v5_layer(v5, "counts")
  logcounts <- v5_layer(v5, "data")
  SingleCellExperiment::SingleCellExperiment(
    assays = list(counts = counts, logcounts = logcounts),
    colData = S4Vectors::DataFrame(v5@meta.data, check.names = FALSE),
    metadata = list(source = "CellBench fixture")
  )
}

# Everything of `before` is in `after`, unchanged; the reductions and misc entries in `added`
# are the only additions.
expect_seurat_unchanged <- function(after, before, added = c("scVI", "umap.scVI")) {
  for (s in setdiff(methods::slotNames(before), c("reductions", "misc", "commands", "tools"))) {
    expect_identical(methods::slot(after, s), methods::slot(before, s), label = paste0("@", s))
  }
  expect_identical(after@commands, before@commands)
  expect_identical(after@tools, before@tools)
  expect_setequal(names(after@reductions), c(names(before@reductions), added))
  for (r in names(before@reductions)) {
    expect_identical(after@reductions[[r]], before@reductions[[r]], label = paste0("reduction ", r))
  }
  expect_setequal(names(after@misc), c(names(before@misc), "scVI"))
  for (m in names(before@misc)) expect_identical(after@misc[[m]], before@misc[[m]], label = paste0("misc ", m))
}

# The two reductions RunScVI() adds to a Seurat object.
expect_scvi_reductions <- function(obj, cells, assay = "RNA", n_latent = 10) {
  scvi <- obj@reductions[["scVI"]]
  umap <- obj@reductions[["umap.scVI"]]
  expect_s4_class(scvi, "DimReduc")
  expect_identical(scvi@key, "scVI_")
  expect_identical(umap@key, "umapscVI_")
  expect_identical(scvi@assay.used, assay)
  expect_identical(umap@assay.used, assay)
  expect_identical(dim(scvi@cell.embeddings), c(length(cells), as.integer(n_latent)))
  expect_identical(dim(umap@cell.embeddings), c(length(cells), 2L))
  expect_identical(rownames(scvi@cell.embeddings), cells)
  expect_identical(rownames(umap@cell.embeddings), cells)
  expect_identical(colnames(scvi@cell.embeddings), paste0("scVI_", seq_len(n_latent)))
  expect_identical(colnames(umap@cell.embeddings), paste0("umapscVI_", 1:2))
  expect_true(all(is.finite(scvi@cell.embeddings)))
  expect_true(all(is.finite(umap@cell.embeddings)))
  # a latent space, not a constant
  expect_gt(min(apply(scvi@cell.embeddings, 2, stats::sd)), 0)
}

# Mean fraction of each cell's k nearest neighbours (Euclidean) sharing its label.
knn_purity <- function(x, labels, k = 15) {
  d <- as.matrix(stats::dist(x))
  diag(d) <- Inf
  labels <- as.character(labels)
  mean(vapply(seq_len(nrow(d)), function(i) {
    mean(labels[order(d[i, ])[seq_len(k)]] == labels[i])
  }, numeric(1)))
}
