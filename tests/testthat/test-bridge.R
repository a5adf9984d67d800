# The hand-off between R and Python: nothing written into the user's global environment.

test_that("the R door leaves the global environment as it was, after a run and after an error", {
  skip_if_no_python()
  skip_if_no_seurat_object()
  before <- ls(globalenv(), all.names = TRUE)
  res <- RunScVI(SeuratObject::pbmc_small, batch_key = "groups", max_epochs = 2, verbose = FALSE)
  expect_identical(dim(res@reductions$scVI@cell.embeddings), c(80L, 10L))
  expect_identical(ls(globalenv(), all.names = TRUE), before)
  expect_error(
    RunScVI(SeuratObject::pbmc_small, batch_key = "nope", verbose = FALSE),
    class = "pyscvibridge_error"
  )
  expect_identical(ls(globalenv(), all.names = TRUE), before)
  sce <- cellbench("SingleCellExperiment")
  expect_s4_class(sce, "SingleCellExperiment")
  expect_identical(ls(globalenv(), all.names = TRUE), before)
  # each call's hand-off environment is gone once it returns
  expect_length(ls(pyscvibridge:::.state$bridges, all.names = TRUE), 0L)
})

test_that("R's random-number state is the user's before and after a call", {
  skip_if_no_python()
  skip_if_no_seurat_object()
  set.seed(42)
  expected <- runif(3)
  set.seed(42)
  RunScVI(SeuratObject::pbmc_small, batch_key = "groups", max_epochs = 1, verbose = FALSE)
  expect_identical(runif(3), expected)
})

test_that("the conventions come from Python, once per session", {
  skip_if_no_python()
  conv <- pyscvibridge:::.conventions()
  expect_identical(conv$reductions$seurat$umap, "umap.scVI")
  expect_identical(conv$reductions$sce$umap, "UMAP_scVI")
  expect_identical(conv$seurat_keys[["umap.scVI"]], "umapscVI_")
  expect_identical(unlist(conv$presets), c("fast", "scvi-tools"))
  expect_identical(conv$integrate_layers_reduction, "integrated.scvi")
})
