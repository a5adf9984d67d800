# RunScVI() on a SingleCellExperiment.

test_that("SCE: reducedDims scVI and UMAP_scVI and metadata added, nothing else changed", {
  skip_if_no_python()
  sce <- cellbench_sce()
  res <- RunScVI(
    sce,
    batch_key = "batch", labels_key = "cell_line", categorical_covariate_keys = "demuxlet_cls",
    continuous_covariate_keys = "total_count_per_cell", max_epochs = 3, n_latent = 8, verbose = FALSE
  )
  expect_s4_class(res, "SingleCellExperiment")
  expect_identical(SingleCellExperiment::reducedDimNames(res), c("scVI", "UMAP_scVI"))
  scvi <- SingleCellExperiment::reducedDim(res, "scVI")
  umap <- SingleCellExperiment::reducedDim(res, "UMAP_scVI")
  expect_identical(dim(scvi), c(ncol(sce), 8L))
  expect_identical(dim(umap), c(ncol(sce), 2L))
  expect_identical(rownames(scvi), colnames(sce))
  expect_true(all(is.finite(scvi)))

  # everything else as it was
  expect_identical(colnames(res), colnames(sce))
  expect_identical(rownames(res), rownames(sce))
  expect_identical(SummarizedExperiment::colData(res), SummarizedExperiment::colData(sce))
  expect_identical(SummarizedExperiment::rowData(res), SummarizedExperiment::rowData(sce))
  expect_identical(SummarizedExperiment::assays(res), SummarizedExperiment::assays(sce))
  counts_x <- function(x) SummarizedExperiment::assay(x, "counts", withDimnames = FALSE)@x
  expect_identical(vector_address(counts_x(res)), vector_address(counts_x(sce)))  # shared, not copied
  meta <- S4Vectors::metadata(res)
  expect_identical(meta$source, "CellBench fixture")
  expect_identical(meta$scVI$params$batch_key, "batch")
  expect_identical(meta$scVI$params$labels_key, "cell_line")
  expect_identical(meta$scVI$epochs_run, 3L)
  expect_identical(unlist(meta$scVI$params$categorical_covariate_keys), "demuxlet_cls")
  expect_identical(unlist(meta$scVI$params$continuous_covariate_keys), "total_count_per_cell")
})

test_that("SCE: a log-normalised assay given as counts is an error naming `assay`", {
  skip_if_no_python()
  sce <- cellbench_sce()
  err <- expect_error(
    RunScVI(sce, batch_key = "batch", assay = "logcounts", max_epochs = 2, verbose = FALSE),
    class = "pyscvibridge_error"
  )
  msg <- conditionMessage(err)
  expect_match(msg, "`assay`", fixed = TRUE)
  expect_match(msg, "raw counts", fixed = TRUE)
})

test_that("SCE: unknown assay and missing batch column are errors naming the argument", {
  skip_if_no_python() # checked in Python, against the object
  sce <- cellbench_sce()
  err <- expect_error(RunScVI(sce, batch_key = "batch", assay = "raw"), class = "pyscvibridge_error")
  expect_match(conditionMessage(err), "`assay`", fixed = TRUE)
  expect_match(conditionMessage(err), "\"logcounts\"", fixed = TRUE)
  err <- expect_error(RunScVI(sce, batch_key = "plate"), class = "pyscvibridge_error")
  expect_match(conditionMessage(err), "`batch_key`", fixed = TRUE)
  expect_match(conditionMessage(err), "\"cell_line\"", fixed = TRUE)
  expect_error(RunScVI(sce), "`batch_key` is required")
  err <- expect_error(
    RunScVI(sce, batch_key = "batch", continuous_covariate_keys = "cell_line"),
    class = "pyscvibridge_error"
  )
  expect_match(conditionMessage(err), "`continuous_covariate_keys`", fixed = TRUE)
  expect_match(conditionMessage(err), "numeric", fixed = TRUE)
  expect_error(RunScVI(sce, batch_key = "batch", categorical_covariate_keys = "donor"), "`categorical_covariate_keys`")
  expect_error(RunScVI(sce, batch_key = "batch", preset = "slow"), "`preset`")
})
