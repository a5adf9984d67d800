# scVIIntegration(): the Seurat 5 IntegrateLayers() method, called as IntegrateLayers() calls it
# (integrate_layers() in helper-integrate-layers.R) on the v5 fixtures, and directly on a v4 assay.

expect_integrated <- function(res, before, name = "integrated.scvi", key = "integratedscvi_",
                              n_latent = 10, assay = "RNA") {
  dr <- res@reductions[[name]]
  cells <- .il_assay_cells(before@assays[[assay]])
  expect_s4_class(dr, "DimReduc")
  expect_identical(dr@key, key)
  expect_match(dr@key, "^[a-zA-Z][a-zA-Z0-9]*_$")
  expect_identical(dr@assay.used, assay)
  expect_identical(dim(dr@cell.embeddings), c(length(cells), as.integer(n_latent)))
  expect_identical(rownames(dr@cell.embeddings), cells)
  expect_identical(colnames(dr@cell.embeddings), paste0(key, seq_len(n_latent)))
  expect_true(all(is.finite(dr@cell.embeddings)))
  expect_gt(min(apply(dr@cell.embeddings, 2, stats::sd)), 0)
  # nothing else changed: same assays (no JoinLayers), metadata and other reductions
  expect_identical(res@assays, before@assays)
  expect_identical(res@reductions[names(before@reductions)], before@reductions)
  invisible(dr)
}

# Mean normalised entropy of the batches among each cell's k nearest neighbours (1 = as mixed as
# the batch sizes allow anywhere, 0 = one batch only), as in tests/python/test_workflow.py.
knn_batch_entropy <- function(x, batch, k = 30) {
  d <- as.matrix(stats::dist(x))
  diag(d) <- Inf
  batch <- as.character(batch)
  levels <- unique(batch)
  mean(vapply(seq_len(nrow(d)), function(i) {
    p <- table(factor(batch[order(d[i, ])[seq_len(k)]], levels = levels)) / k
    p <- p[p > 0]
    -sum(p * log(p)) / log(length(levels))
  }, numeric(1)))
}

test_that("split v5 fixture, called as IntegrateLayers() calls it: a DimReduc over the assay's cells", {
  skip_if_no_python()
  obj <- read_fixture("cellbench_small_v5_split.rds")
  feats <- top_features(obj, 300)
  expect_silent(res <- integrate_layers(obj, method = scVIIntegration, features = feats, max_epochs = 2, verbose = FALSE))
  dr <- expect_integrated(res, obj)
  expect_identical(res@meta.data, obj@meta.data)
  rec <- dr@misc$pyscvibridge
  expect_identical(rec$params$genes_from, "given")
  expect_identical(rec$n_hvg, 300L)
  expect_identical(rec$epochs_run, 2L)
  expect_identical(rec$bridge$batches, "the split layers")
  expect_identical(rec$bridge$assay_class, "Assay5")
  expect_identical(rec$model_kwargs, list(n_layers = 1L, gene_likelihood = "zinb"))
})

test_that("SeuratWrappers' arguments: new.reduction, ndims, nlayers, gene_likelihood; conda_env is not needed", {
  skip_if_no_python()
  obj <- read_fixture("cellbench_small_v5_split.rds")
  said <- capture_messages(
    res <- integrate_layers(
      obj,
      method = scVIIntegration, features = top_features(obj, 200), new.reduction = "scvi.nb",
      ndims = 6, nlayers = 2, gene_likelihood = "nb", max_epochs = 1, conda_env = "scvi-env",
      categorical_covariates = obj@meta.data["demuxlet_cls"],
      continuous_covariates = list(log_depth = log(obj@meta.data$nCount_RNA))
    )
  )
  expect_match(said, "`conda_env` is not used", all = FALSE)
  expect_match(said, "Batches: 5 from the split layers", all = FALSE)
  dr <- expect_integrated(res, obj, name = "scvi.nb", key = "scvinb_", n_latent = 6)
  expect_identical(dr@misc$pyscvibridge$model_kwargs, list(n_layers = 2L, gene_likelihood = "nb"))
  expect_identical(dr@misc$pyscvibridge$params$n_latent, 6L)
  expect_identical(dr@misc$pyscvibridge$params$categorical_covariate_keys, "demuxlet_cls")
  expect_identical(dr@misc$pyscvibridge$params$continuous_covariate_keys, "log_depth")
})

test_that("an SCTAssay: its corrected counts, one batch per SCT model, and it says so", {
  skip_if_no_python()
  skip_if_not_installed("Seurat")
  obj <- cellbench_sct()
  expect_s4_class(obj[["SCT"]], "SCTAssay")
  said <- capture_messages(
    res <- integrate_layers(
      obj,
      method = scVIIntegration, assay = "SCT", features = head(rownames(obj[["SCT"]]@scale.data), 300),
      max_epochs = 2
    )
  )
  expect_match(said, "is an SCTAssay: scVI trains on its counts, SCTransform's corrected counts", all = FALSE)
  expect_match(said, "Batches: 5 from the SCT models", all = FALSE)
  dr <- res@reductions$integrated.scvi
  expect_identical(dr@assay.used, "SCT")
  expect_identical(rownames(dr@cell.embeddings), colnames(obj))
  expect_identical(dim(dr@cell.embeddings), c(400L, 10L))
  expect_identical(dr@misc$pyscvibridge$bridge$assay_class, "SCTAssay")
  expect_identical(dr@misc$pyscvibridge$n_hvg, 300L)
  expect_identical(res@assays, obj@assays)
})

test_that("joined v5 fixture: batches from groups, as a vector or a data frame column", {
  skip_if_no_python()
  obj <- read_fixture("cellbench_small_v5.rds")
  feats <- top_features(obj, 200)
  res <- integrate_layers(obj, method = scVIIntegration, features = feats, groups = obj@meta.data$batch, max_epochs = 1, verbose = FALSE)
  expect_integrated(res, obj)
  expect_identical(res@reductions$integrated.scvi@misc$pyscvibridge$bridge$batches, "groups")
  # a data frame with the cells as row names, in another order: matched by name
  meta <- obj@meta.data[rev(seq_len(nrow(obj@meta.data))), ]
  res2 <- integrate_layers(
    obj,
    method = scVIIntegration, features = feats, groups = meta, groups.name = "batch", max_epochs = 1,
    verbose = FALSE
  )
  expect_equal(res2@reductions$integrated.scvi@cell.embeddings, res@reductions$integrated.scvi@cell.embeddings)
})

test_that("a Seurat v4 assay, called directly (IntegrateLayers() itself takes v5 and SCT assays only)", {
  skip_if_no_python()
  obj <- cellbench_v4()
  expect_error(integrate_layers(obj, method = scVIIntegration), "must be a v5 or SCT assay")
  value <- scVIIntegration(
    obj[["RNA"]],
    assay = "RNA", features = top_features(obj, 200), groups = obj@meta.data$batch, max_epochs = 1, verbose = FALSE
  )
  expect_named(value, "integrated.scvi")
  obj[["integrated.scvi"]] <- value$integrated.scvi
  expect_identical(SeuratObject::Embeddings(obj, "integrated.scvi")[, 1], value$integrated.scvi@cell.embeddings[, 1])
  expect_identical(rownames(value$integrated.scvi@cell.embeddings), colnames(obj))
  expect_identical(value$integrated.scvi@assay.used, "RNA")
})

test_that("the same seed and settings give the same embedding as RunScVI()", {
  skip_if_no_python()
  obj <- read_fixture("cellbench_small_v5_split.rds")
  # IntegrateLayers() passes the variable features; hvg = "pyscvibridge" picks genes as RunScVI() does
  res <- integrate_layers(
    obj,
    method = scVIIntegration, features = top_features(obj, 100), hvg = "pyscvibridge", max_epochs = 3,
    seed = 4, verbose = FALSE
  )
  run <- RunScVI(obj, max_epochs = 3, seed = 4, verbose = FALSE)
  a <- res@reductions$integrated.scvi@cell.embeddings
  b <- run@reductions$scVI@cell.embeddings
  expect_identical(rownames(a), rownames(b))
  expect_equal(unname(a), unname(b), tolerance = 1e-5)
  expect_identical(res@reductions$integrated.scvi@misc$pyscvibridge$n_hvg, run@misc$scVI$n_hvg)
})

test_that("CellBench through the method: batches mix, cell lines stay apart; scANVI predicts the labels", {
  skip_if_no_python()
  obj <- read_fixture("cellbench_small_v5_split.rds")
  labels <- as.character(obj@meta.data$cell_line)
  labels[seq(1, length(labels), by = 3)] <- NA # a third unknown
  res <- integrate_layers(
    obj,
    method = scVIIntegration, features = top_features(obj, 1000), labels = labels, max_epochs = 60,
    scanvi_epochs = 10, verbose = FALSE
  )
  expect_integrated(res, obj)
  expect_integrated(res, obj, name = "integrated.scanvi", key = "integratedscanvi_")
  batch <- obj@meta.data$batch
  line <- obj@meta.data$cell_line
  pca <- obj@reductions$pca@cell.embeddings
  scvi <- res@reductions$integrated.scvi@cell.embeddings
  mix_pca <- knn_batch_entropy(pca, batch)
  mix_scvi <- knn_batch_entropy(scvi, batch)
  # Perfect mixing is impossible on CellBench: two of the five batches hold three of the five lines.
  # Measured here: batch entropy 0.41 (PCA) -> 0.65 (scVI); 15-NN cell-line purity 0.94 -> 0.96; the
  # hidden labels predicted right for 0.96 of their cells.
  expect_gt(mix_scvi, mix_pca + 0.1)
  expect_gt(knn_purity(scvi, line), 0.8)
  # the predictions: a factor of the known labels, right for the cells whose label was hidden
  pred <- res@meta.data$scanvi_prediction
  expect_s3_class(pred, "factor")
  expect_setequal(levels(pred), unique(stats::na.omit(labels)))
  hidden <- is.na(labels)
  expect_gt(mean(as.character(pred[hidden]) == as.character(line[hidden])), 0.8)
  expect_true(all(res@meta.data$scanvi_probability > 0 & res@meta.data$scanvi_probability <= 1))
})

test_that("bad input: an error naming the argument, before any training, the object untouched", {
  obj <- read_fixture("cellbench_small_v5_split.rds")
  joined <- read_fixture("cellbench_small_v5.rds")
  before <- joined
  feats <- top_features(obj, 50)
  expect_error(
    joined <- integrate_layers(joined, method = scVIIntegration, features = feats, verbose = FALSE),
    class = "pyscvibridge_error", regexp = "not split into layers and no `groups`"
  )
  expect_identical(joined, before)
  expect_error(
    integrate_layers(joined, method = scVIIntegration, features = feats, groups = obj@meta.data$batch[1:10]),
    class = "pyscvibridge_error", regexp = "`groups` has 10 values, but the assay has 400 cells"
  )
  expect_error(
    integrate_layers(joined, method = scVIIntegration, features = feats, groups = joined@meta.data, groups.name = "plate"),
    class = "pyscvibridge_error", regexp = "`groups.name` \"plate\" is not a column"
  )
  expect_error(
    integrate_layers(obj, method = scVIIntegration, features = feats, nlayers = 1.5),
    class = "pyscvibridge_error", regexp = "`nlayers` must be a whole number"
  )
  expect_error(
    integrate_layers(obj, method = scVIIntegration, features = feats, ndims = 5, n_latent = 8),
    class = "pyscvibridge_error", regexp = "same setting"
  )
  expect_error(
    integrate_layers(obj, method = scVIIntegration, features = feats, labels = obj@meta.data$cell_line[-1]),
    class = "pyscvibridge_error", regexp = "`labels` must have one value per cell"
  )
  expect_error(
    integrate_layers(obj, method = scVIIntegration, features = feats, reduction.key = "scvi"),
    class = "pyscvibridge_error", regexp = "`reduction.key`"
  )
  expect_error(
    integrate_layers(obj, method = scVIIntegration, features = feats, dims = 1:30),
    regexp = "Unknown argument to `scVIIntegration\\(\\)`: `dims`"
  )
  expect_error(scVIIntegration(obj), class = "pyscvibridge_error", regexp = "must be a Seurat assay")
})

test_that("bad values, checked in Python: an error naming the argument as scVIIntegration() spells it", {
  skip_if_no_python()
  obj <- read_fixture("cellbench_small_v5_split.rds")
  before <- obj
  feats <- top_features(obj, 50)
  expect_error(
    scVIIntegration(obj[["RNA"]], features = c(feats[1:3], "NOTAGENE", "ALSO-NOT"), verbose = FALSE),
    class = "pyscvibridge_error", regexp = "`features`: 2 of 5 genes are not in the object"
  )
  expect_error(
    obj <- integrate_layers(obj, method = scVIIntegration, features = feats, verbose = FALSE, nlayers = 0),
    class = "pyscvibridge_error", regexp = "`nlayers` must be a whole number of at least 1"
  )
  expect_error(
    obj <- integrate_layers(obj, method = scVIIntegration, features = feats, verbose = FALSE, n_layers = 0),
    class = "pyscvibridge_error", regexp = "`n_layers` must be a whole number of at least 1"
  )
  expect_error(
    obj <- integrate_layers(obj, method = scVIIntegration, features = feats, verbose = FALSE, gene_likelihood = "normal"),
    class = "pyscvibridge_error", regexp = "`gene_likelihood` must be one of"
  )
  expect_error(
    obj <- integrate_layers(obj, method = scVIIntegration, features = feats, verbose = FALSE, dropout_rate = 1),
    class = "pyscvibridge_error", regexp = "`dropout_rate` must be a number from 0 up to"
  )
  expect_error(
    obj <- integrate_layers(obj, method = scVIIntegration, features = feats, verbose = FALSE, ndims = 0),
    class = "pyscvibridge_error", regexp = "`ndims` must be a whole number of at least 1"
  )
  expect_identical(obj, before)
})

test_that("an SCTAssay with a single SCT model and no groups is an error naming groups", {
  skip_if_not_installed("Seurat")
  obj <- suppressWarnings(Seurat::SCTransform(cellbench_v4(), verbose = FALSE))
  expect_error(
    scVIIntegration(obj[["SCT"]], assay = "SCT", features = rownames(obj[["SCT"]]@scale.data)[1:50]),
    class = "pyscvibridge_error", regexp = "single SCT model and no `groups`"
  )
})
