# RunScVI(save_model = ): the trained model saved in scvi-tools' format, its path recorded.

test_that("Seurat: the scVI model is saved and its path recorded in @misc$scVI", {
  skip_if_no_python()
  skip_if_no_seurat_object()
  pbmc <- SeuratObject::pbmc_small
  dir <- file.path(withr::local_tempdir(), "pbmc_model")
  res <- RunScVI(pbmc, batch_key = "groups", max_epochs = 2, save_model = dir, verbose = FALSE)
  saved <- res@misc$scVI$model
  expect_identical(saved$path, normalizePath(dir))
  expect_identical(saved$model_class, "SCVI")
  expect_identical(saved$batch_key, "groups")
  expect_setequal(saved$batches, unique(as.character(pbmc$groups)))
  expect_true(file.exists(file.path(dir, "model.pt")))

  # a second run into the same directory is refused before any training
  expect_error(
    RunScVI(pbmc, batch_key = "groups", max_epochs = 2, save_model = dir, verbose = FALSE),
    class = "pyscvibridge_error", regexp = "already exists"
  )
  expect_error(RunScVI(pbmc, batch_key = "groups", save_model = 3), regexp = "save_model")
})
