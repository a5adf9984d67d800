# RunScVI() on Seurat objects: v4 (pbmc_small, CellBench), v5 fixtures (joined and split layers).

test_that("pbmc_small (Seurat v4): scVI and umap.scVI added, nothing else changed", {
  skip_if_no_python()
  skip_if_no_seurat_object()
  pbmc <- SeuratObject::pbmc_small
  res <- RunScVI(pbmc, batch_key = "groups", max_epochs = 3, n_latent = 5, verbose = FALSE)
  expect_s4_class(res, "Seurat")
  expect_scvi_reductions(res, colnames(pbmc), n_latent = 5)
  expect_seurat_unchanged(res, pbmc)
  # the counts are the input's vectors, not a copy
  expect_identical(vector_address(res@assays$RNA@counts@x), vector_address(pbmc@assays$RNA@counts@x))

  prov <- res@misc$scVI
  expect_identical(prov$params$batch_key, "groups")
  expect_identical(prov$params$n_latent, 5L)
  expect_identical(prov$params$max_epochs, 3L)
  expect_identical(prov$epochs_run, 3L)
  expect_length(prov$history$elbo_train, 3)
  expect_true(all(is.finite(prov$history$elbo_train)))
  expect_identical(prov$bridge$assay, "RNA")
  expect_true(nzchar(prov$versions[["scvi-tools"]]))
})

test_that("the same seed gives the same latent; another seed a different one", {
  skip_if_no_python()
  skip_if_no_seurat_object()
  pbmc <- SeuratObject::pbmc_small
  run <- function(seed) {
    RunScVI(pbmc, batch_key = "groups", max_epochs = 2, seed = seed, verbose = FALSE)@reductions$scVI@cell.embeddings
  }
  a <- run(1)
  expect_equal(run(1), a)
  expect_false(isTRUE(all.equal(run(2), a)))
})

test_that("CellBench as a Seurat v4 object: batches mix, cell lines stay apart", {
  skip_if_no_python()
  obj <- cellbench_v4()
  expect_s4_class(obj@assays$RNA, "Assay")
  res <- RunScVI(obj, batch_key = "batch", labels_key = "cell_line", max_epochs = 30, verbose = FALSE)
  expect_scvi_reductions(res, colnames(obj))
  expect_seurat_unchanged(res, obj)
  expect_identical(res@misc$scVI$params$labels_key, "cell_line")
  # After 30 epochs the five cell lines already stand apart in the latent (15-NN purity 0.88 here;
  # 0.96 after 60 epochs, like the unintegrated PCA); chance would be about 0.2.
  expect_gt(knn_purity(res@reductions$scVI@cell.embeddings, obj$cell_line), 0.8)
})

test_that("Seurat v5 fixture with joined layers", {
  skip_if_no_python()
  obj <- read_fixture("cellbench_small_v5.rds")
  cells <- rownames(obj@meta.data)
  res <- RunScVI(obj, batch_key = "batch", max_epochs = 3, verbose = FALSE)
  expect_scvi_reductions(res, cells)
  expect_seurat_unchanged(res, obj)
  expect_identical(levels(res@meta.data$batch), levels(obj@meta.data$batch))
})

test_that("Seurat v5 fixture with split layers: the split is the batch by default", {
  skip_if_no_python()
  obj <- read_fixture("cellbench_small_v5_split.rds")
  expect_true(any(startsWith(names(obj@assays$RNA@layers), "counts.")))
  cells <- rownames(obj@meta.data)
  res <- RunScVI(obj, max_epochs = 3, verbose = FALSE)
  expect_scvi_reductions(res, cells)
  expect_seurat_unchanged(res, obj)
  # still split: no JoinLayers() happened to the user's object
  expect_identical(names(res@assays$RNA@layers), names(obj@assays$RNA@layers))
  bridge <- res@misc$scVI$bridge
  expect_false(bridge$batch_key %in% colnames(obj@meta.data))
  expect_identical(res@misc$scVI$params$batch_key, bridge$batch_key)
})

test_that("Seurat v5 split layers with an explicit batch column", {
  skip_if_no_python()
  obj <- read_fixture("cellbench_small_v5_split.rds")
  res <- RunScVI(obj, batch_key = "cell_line", max_epochs = 2, verbose = FALSE)
  expect_scvi_reductions(res, rownames(obj@meta.data))
  expect_identical(res@misc$scVI$params$batch_key, "cell_line")
})

test_that("pbmc_small as a Seurat v5 object", {
  skip_if_no_python()
  obj <- read_fixture("pbmc_small_v5.rds")
  res <- RunScVI(obj, batch_key = "groups", max_epochs = 2, verbose = FALSE)
  expect_scvi_reductions(res, rownames(obj@meta.data))
  expect_seurat_unchanged(res, obj)
})

test_that("running again replaces the reductions; Python's warnings arrive as R warnings", {
  skip_if_no_python()
  skip_if_no_seurat_object()
  first <- RunScVI(SeuratObject::pbmc_small, batch_key = "groups", max_epochs = 2, verbose = FALSE)
  expect_warning(
    again <- RunScVI(first, batch_key = "orig.ident", n_latent = 4, max_epochs = 2, verbose = FALSE),
    "single level"
  )
  expect_identical(names(again@reductions), names(first@reductions))
  expect_identical(dim(again@reductions$scVI@cell.embeddings), c(80L, 4L))
  expect_identical(again@misc$scVI$params$batch_key, "orig.ident")
})
