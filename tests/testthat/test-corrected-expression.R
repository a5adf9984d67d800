# RunScVI(corrected_genes = ): batch-corrected normalised expression as a Seurat assay / SCE altExp.

test_that("Seurat: corrected expression as the assay scVI; SCE: as the altExp scVI", {
  skip_if_no_python()
  obj <- read_fixture("cellbench_small_v5.rds")
  cells <- rownames(obj@meta.data)
  # two of the most expressed genes (all 2,000 genes of the fixture are used, n_top_genes = 2000)
  total <- Matrix::rowSums(v5_layer(obj, "counts"))
  genes <- names(sort(total, decreasing = TRUE))[c(2, 1)]
  res <- RunScVI(obj,
    batch_key = "batch", max_epochs = 3, n_top_genes = 2000, corrected_genes = genes,
    transform_batch = levels(obj@meta.data$batch)[1], verbose = FALSE
  )
  expect_scvi_reductions(res, cells)
  a <- res@assays[["scVI"]]
  expect_s4_class(a, "Assay")
  expect_identical(rownames(a@data), genes)
  expect_identical(colnames(a@data), cells)
  expect_true(all(is.finite(a@data)) && all(a@data > 0))
  # scaled to 10,000 counts per cell: two genes take less than all of them
  expect_true(all(colSums(a@data) < 1e4))
  expect_identical(res@assays[["RNA"]], obj@assays[["RNA"]])
  expect_identical(res@misc$scVI$corrected_expression$transform_batch, levels(obj@meta.data$batch)[1])

  sce <- cellbench_sce()
  res_sce <- RunScVI(sce, batch_key = "batch", max_epochs = 2, corrected_genes = genes[1], verbose = FALSE)
  alt <- SingleCellExperiment::altExp(res_sce, "scVI")
  expect_identical(SummarizedExperiment::assayNames(alt), "normalized")
  expect_identical(dim(alt), c(1L, ncol(sce)))
  expect_identical(rownames(alt), genes[1])
  expect_identical(colnames(alt), colnames(sce))
  expect_length(S4Vectors::metadata(res_sce)$scVI$corrected_expression$transform_batch, 0)
  expect_identical(SummarizedExperiment::assays(res_sce), SummarizedExperiment::assays(sce))
})

test_that("corrected expression: unknown genes and batches are errors before training", {
  skip_if_no_python() # checked in Python, against the object
  skip_if_no_seurat_object()
  pbmc <- SeuratObject::pbmc_small
  expect_error(
    RunScVI(pbmc, batch_key = "groups", corrected_genes = c("MS4A1", "NOTAGENE"), verbose = FALSE),
    class = "pyscvibridge_error", regexp = "NOTAGENE"
  )
  expect_error(
    RunScVI(pbmc, batch_key = "groups", corrected_genes = "MS4A1", transform_batch = "g9", verbose = FALSE),
    class = "pyscvibridge_error", regexp = "g9"
  )
  expect_error(
    RunScVI(pbmc, batch_key = "groups", transform_batch = "g1", verbose = FALSE),
    class = "pyscvibridge_error", regexp = "corrected_genes"
  )
  sce <- SingleCellExperiment::SingleCellExperiment(
    list(counts = matrix(1, 3, 2, dimnames = list(c("a", "b", "c"), c("x", "y")))),
    colData = S4Vectors::DataFrame(b = c("1", "2"))
  )
  expect_error(
    RunScVI(sce, batch_key = "b", corrected_genes = "z", verbose = FALSE),
    class = "pyscvibridge_error", regexp = "not in the object"
  )
})

test_that("genes of the object that were not highly variable are added to the training genes, and said so", {
  skip_if_no_python()
  skip_if_no_seurat_object()
  pbmc <- SeuratObject::pbmc_small
  genes <- rownames(pbmc)
  said <- capture_messages(
    res <- RunScVI(pbmc, batch_key = "groups", n_top_genes = 20, max_epochs = 1, corrected_genes = genes)
  )
  added <- res@misc$scVI$params$extra_genes_added
  expect_length(added, length(genes) - 20)
  expect_match(said, paste("training also on", length(added), "gene\\(s\\) that were not highly variable"), all = FALSE)
  expect_identical(rownames(res@assays[["scVI"]]@data), genes)
  expect_identical(res@misc$scVI$n_hvg, length(genes))
})
