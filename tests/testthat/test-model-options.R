# scVI's model options from R: RunScVI() / scVIIntegration() take n_layers, n_hidden,
# gene_likelihood, dispersion, dropout_rate, model_kwargs and train_kwargs; MapScVIQuery() takes
# train_kwargs (a query keeps the reference model's architecture). Values are checked in Python.

test_that("RunScVI(n_layers = 2, ...) trains that model, and the record says so", {
  skip_if_no_python()
  skip_if_no_seurat_object()
  pbmc <- SeuratObject::pbmc_small
  res <- RunScVI(
    pbmc,
    batch_key = "groups", n_latent = 4, max_epochs = 2, n_layers = 2, n_hidden = 16,
    gene_likelihood = "nb", dispersion = "gene-batch", dropout_rate = 0.2,
    model_kwargs = list(latent_distribution = "ln"), train_kwargs = list(batch_size = 40),
    verbose = FALSE
  )
  rec <- res@misc$scVI
  expect_identical(rec$model_kwargs, list(
    n_layers = 2L, n_hidden = 16L, gene_likelihood = "nb", dispersion = "gene-batch",
    dropout_rate = 0.2, latent_distribution = "ln"
  ))
  expect_identical(rec$epochs_run, 2L)
  expect_identical(dim(SeuratObject::Embeddings(res, "scVI")), c(80L, 4L))
})

test_that("bad model options: an error naming the argument, the object untouched", {
  skip_if_no_python()
  skip_if_no_seurat_object()
  pbmc <- SeuratObject::pbmc_small
  before <- pbmc
  expect_error(
    pbmc <- RunScVI(pbmc, batch_key = "groups", n_layers = 0, verbose = FALSE),
    class = "pyscvibridge_error", regexp = "`n_layers` must be a whole number of at least 1, not \"0\""
  )
  expect_error(
    pbmc <- RunScVI(pbmc, batch_key = "groups", n_hidden = 0, verbose = FALSE),
    class = "pyscvibridge_error", regexp = "`n_hidden` must be a whole number of at least 1"
  )
  expect_error(
    pbmc <- RunScVI(pbmc, batch_key = "groups", gene_likelihood = "gaussian", verbose = FALSE),
    class = "pyscvibridge_error", regexp = "`gene_likelihood` must be one of \"zinb\", \"nb\", \"poisson\""
  )
  expect_error(
    pbmc <- RunScVI(pbmc, batch_key = "groups", dispersion = "cell", verbose = FALSE),
    class = "pyscvibridge_error", regexp = "`dispersion` must be one of \"gene\""
  )
  expect_error(
    pbmc <- RunScVI(pbmc, batch_key = "groups", dropout_rate = 1, verbose = FALSE),
    class = "pyscvibridge_error", regexp = "`dropout_rate` must be a number from 0 up to"
  )
  expect_error(
    pbmc <- RunScVI(pbmc, batch_key = "groups", model_kwargs = list(n_layers = 0), verbose = FALSE),
    class = "pyscvibridge_error", regexp = "`n_layers` must be a whole number of at least 1"
  )
  expect_identical(pbmc, before)
})

test_that("model options: types checked in R, before Python starts", {
  skip_if_no_seurat_object()
  pbmc <- SeuratObject::pbmc_small
  expect_error(RunScVI(pbmc, batch_key = "groups", n_layers = "two"),
    class = "pyscvibridge_error", regexp = "`n_layers` must be a whole number"
  )
  expect_error(RunScVI(pbmc, batch_key = "groups", dropout_rate = "high"),
    class = "pyscvibridge_error", regexp = "`dropout_rate` must be a number"
  )
  expect_error(RunScVI(pbmc, batch_key = "groups", model_kwargs = list(2)),
    class = "pyscvibridge_error", regexp = "`model_kwargs` must be a named list"
  )
  expect_error(RunScVI(pbmc, batch_key = "groups", n_layers = 2, model_kwargs = list(n_layers = 3)),
    class = "pyscvibridge_error", regexp = "given both as an argument and in `model_kwargs`"
  )
  expect_error(MapScVIQuery(pbmc, tempdir(), batch_key = "groups", train_kwargs = "fast"),
    class = "pyscvibridge_error", regexp = "`train_kwargs` must be a named list"
  )
  # a query is mapped onto the reference's architecture: no model options there
  expect_error(MapScVIQuery(pbmc, tempdir(), batch_key = "groups", n_layers = 2),
    class = "pyscvibridge_error", regexp = "Unknown argument to `MapScVIQuery\\(\\)`: `n_layers`"
  )
})
