# MapScVIQuery(): a query mapped onto a reference saved by RunScVI(save_model = ).

# k-NN label transfer: the fraction of query cells whose k nearest reference cells (Euclidean, in
# the shared latent space) vote for the query cell's own label.
knn_transfer_accuracy <- function(ref_x, ref_labels, query_x, query_labels, k = 15) {
  ref_labels <- as.character(ref_labels)
  hits <- vapply(seq_len(nrow(query_x)), function(i) {
    d <- colSums((t(ref_x) - query_x[i, ])^2)
    votes <- table(ref_labels[order(d)[seq_len(k)]])
    names(votes)[which.max(votes)] == as.character(query_labels[i])
  }, logical(1))
  mean(hits)
}

test_that("Seurat: reference on three batches, query of the other two lands among its cell line", {
  skip_if_no_python()
  obj <- cellbench_v4()
  batches <- levels(obj@meta.data$batch)
  in_ref <- obj@meta.data$batch %in% batches[1:3]
  ref <- obj[, in_ref]
  query <- obj[, !in_ref]
  dir <- file.path(withr::local_tempdir(), "ref_model")
  ref <- RunScVI(ref,
    batch_key = "batch", labels_key = "cell_line", scanvi = TRUE, max_epochs = 20,
    scanvi_epochs = 5, save_model = dir, verbose = FALSE
  )
  mapped <- MapScVIQuery(query, dir, batch_key = "batch", max_epochs = 10, verbose = FALSE)
  cells <- colnames(query)
  expect_scvi_reductions(mapped, cells)
  expect_identical(mapped@reductions$scANVI@key, "scANVI_")
  expect_identical(mapped@meta.data[, colnames(query@meta.data)], query@meta.data)
  expect_identical(levels(mapped$scanvi_prediction), sort(levels(obj$cell_line)))
  expect_true(all(mapped$scanvi_probability > 0 & mapped$scanvi_probability <= 1))
  expect_identical(mapped@misc$scVI$query$model_class, "SCANVI")
  # the mapped cells sit among reference cells of their own cell line (chance about 0.2; 0.82 after
  # this short training of 240 + 160 cells; the Python tests reach 0.9 on all of CellBench)
  acc <- knn_transfer_accuracy(
    ref@reductions$scANVI@cell.embeddings, ref$cell_line,
    mapped@reductions$scANVI@cell.embeddings, query$cell_line
  )
  expect_gt(acc, 0.7)
  expect_gt(mean(as.character(mapped$scanvi_prediction) == as.character(query$cell_line)), 0.5)

  # SCE query onto the same model, and errors
  sce <- cellbench_sce()
  sce_q <- sce[, !(sce$batch %in% batches[1:3])]
  res <- MapScVIQuery(sce_q, dir, batch_key = "batch", max_epochs = 2, verbose = FALSE)
  expect_identical(
    SingleCellExperiment::reducedDimNames(res),
    c("scVI", "UMAP_scVI", "scANVI")
  )
  expect_identical(rownames(SingleCellExperiment::reducedDim(res, "scVI")), colnames(sce_q))
  expect_true("scanvi_prediction" %in% colnames(SummarizedExperiment::colData(res)))

  # a query with none of the model's genes
  other <- sce_q
  rownames(other) <- paste0("X", seq_len(nrow(other)))
  expect_error(
    MapScVIQuery(other, dir, batch_key = "batch", max_epochs = 1, verbose = FALSE),
    class = "pyscvibridge_error", regexp = "model_dir"
  )
})

test_that("MapScVIQuery: bad input is an error naming the argument", {
  skip_if_no_python() # checked in Python, against the object
  skip_if_no_seurat_object()
  pbmc <- SeuratObject::pbmc_small
  empty <- withr::local_tempdir()
  expect_error(MapScVIQuery(pbmc, empty, batch_key = "groups"), class = "pyscvibridge_error", regexp = "model_dir")
  expect_error(MapScVIQuery(pbmc, 1, batch_key = "groups"), regexp = "model_dir")
  expect_error(MapScVIQuery(list(), empty), class = "pyscvibridge_error", regexp = "query")
  file.create(file.path(empty, "model.pt"))
  expect_error(MapScVIQuery(pbmc, empty, batch_key = "nope"), class = "pyscvibridge_error", regexp = "batch_key")
  expect_error(MapScVIQuery(pbmc, empty, batch_key = "groups", epochs = 3), regexp = "MapScVIQuery")
})
