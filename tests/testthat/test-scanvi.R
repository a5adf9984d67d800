# RunScVI(scanvi = TRUE): scANVI on known labels, predictions as new cell-metadata columns.

# CellBench with a third of the cells' labels hidden ("Unknown"); `hidden` marks them.
with_hidden_labels <- function(meta) {
  set.seed(7)
  hidden <- seq_len(nrow(meta)) %% 3 == 0
  lab <- as.character(meta$cell_line)
  lab[hidden] <- "Unknown"
  meta$label <- factor(lab)
  list(meta = meta, hidden = hidden)
}

test_that("Seurat: scANVI reductions and predictions added, each on its own cell", {
  skip_if_no_python()
  obj <- cellbench_v4()
  h <- with_hidden_labels(obj@meta.data)
  obj@meta.data <- h$meta
  res <- RunScVI(obj,
    batch_key = "batch", labels_key = "label", scanvi = TRUE, max_epochs = 3,
    scanvi_epochs = 2, verbose = FALSE
  )
  cells <- colnames(obj)
  expect_scvi_reductions(res, cells)
  sc <- res@reductions[["scANVI"]]
  um <- res@reductions[["umap.scANVI"]]
  expect_identical(sc@key, "scANVI_")
  expect_identical(um@key, "umapscANVI_")
  expect_identical(dim(sc@cell.embeddings), c(length(cells), 10L))
  expect_identical(dim(um@cell.embeddings), c(length(cells), 2L))
  expect_identical(rownames(sc@cell.embeddings), cells)

  # the old columns untouched, two new ones at the end
  expect_identical(res@meta.data[, colnames(obj@meta.data)], obj@meta.data)
  expect_identical(setdiff(colnames(res@meta.data), colnames(obj@meta.data)), c("scanvi_prediction", "scanvi_probability"))
  pred <- res@meta.data$scanvi_prediction
  expect_s3_class(pred, "factor")
  expect_identical(levels(pred), sort(levels(obj$cell_line)))
  prob <- res@meta.data$scanvi_probability
  expect_type(prob, "double")
  expect_true(all(prob > 0 & prob <= 1))
  # each prediction sits on its own cell: the agreement with the known labels computed here is
  # the one Python reported
  known <- !h$hidden
  expect_equal(
    mean(as.character(pred)[known] == as.character(obj$cell_line)[known]),
    res@misc$scVI$scanvi$labelled_agreement
  )
  # (that the predictions are right is checked with a longer training in test-map-query.R)
  expect_identical(res@misc$scVI$scanvi$params$labels_key, "label")
  expect_identical(res@misc$scVI$scanvi$n_unlabelled, sum(h$hidden))
})

test_that("SCE: scANVI reducedDims and colData columns; the scANVI model saved", {
  skip_if_no_python()
  sce <- cellbench_sce()
  h <- with_hidden_labels(as.data.frame(SummarizedExperiment::colData(sce)))
  sce$label <- h$meta$label
  dir <- file.path(withr::local_tempdir(), "model")
  res <- RunScVI(sce,
    batch_key = "batch", labels_key = "label", scanvi = TRUE, max_epochs = 3,
    scanvi_epochs = 2, save_model = dir, verbose = FALSE
  )
  saved <- S4Vectors::metadata(res)$scVI$model
  expect_identical(saved$path, normalizePath(dir))
  expect_identical(saved$model_class, "SCANVI")
  expect_identical(saved$labels_key, "label")
  expect_true(file.exists(file.path(dir, "model.pt")))
  expect_identical(
    SingleCellExperiment::reducedDimNames(res),
    c("scVI", "UMAP_scVI", "scANVI", "UMAP_scANVI")
  )
  expect_identical(dim(SingleCellExperiment::reducedDim(res, "scANVI")), c(ncol(sce), 10L))
  expect_identical(rownames(SingleCellExperiment::reducedDim(res, "UMAP_scANVI")), colnames(sce))
  cd <- SummarizedExperiment::colData(res)
  expect_identical(colnames(cd), c(colnames(SummarizedExperiment::colData(sce)), "scanvi_prediction", "scanvi_probability"))
  expect_identical(cd$label, sce$label)
  expect_identical(levels(cd$scanvi_prediction), sort(levels(sce$cell_line)))
  expect_true(all(cd$scanvi_probability > 0 & cd$scanvi_probability <= 1))
  expect_identical(SummarizedExperiment::assays(res), SummarizedExperiment::assays(sce))
})

test_that("scanvi = TRUE without labels_key is an error naming labels_key", {
  skip_if_no_python() # checked in Python, against the object
  skip_if_no_seurat_object()
  pbmc <- SeuratObject::pbmc_small
  expect_error(
    RunScVI(pbmc, batch_key = "groups", scanvi = TRUE, verbose = FALSE),
    class = "pyscvibridge_error", regexp = "labels_key"
  )
  expect_error(RunScVI(pbmc, batch_key = "groups", scanvi = "yes"), regexp = "scanvi")
  expect_error(
    RunScVI(pbmc, batch_key = "groups", labels_key = "groups", scanvi = TRUE, scanvi_epochs = 0),
    regexp = "scanvi_epochs"
  )
})
