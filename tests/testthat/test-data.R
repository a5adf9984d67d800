# cellbench(): the bundled data, built in R by the converter.

test_that("cellbench() gives the bundled CellBench as a Seurat object and as an SCE", {
  skip_if_no_python()
  skip_if_no_seurat_object()
  seu <- cellbench("Seurat")
  expect_s4_class(seu, "Seurat")
  meta <- seu@meta.data
  expect_identical(nrow(meta), 1408L)
  expect_identical(nlevels(meta$batch), 5L)
  expect_identical(nlevels(meta$cell_line), 5L)
  expect_true(all(startsWith(rownames(meta), paste0(as.character(meta$batch), "_"))))

  sce <- cellbench("SingleCellExperiment")
  expect_s4_class(sce, "SingleCellExperiment")
  expect_identical(dim(sce), c(11533L, 1408L))
  expect_identical(colnames(sce), rownames(meta))
  counts <- SummarizedExperiment::assay(sce, "counts")
  expect_true(all(counts@x == round(counts@x)) && all(counts@x > 0))
  expect_identical(levels(SummarizedExperiment::colData(sce)$batch), levels(meta$batch))
})

test_that("cellbench() refuses an unknown class", {
  expect_error(cellbench("AnnData"), "should be one of")
})
