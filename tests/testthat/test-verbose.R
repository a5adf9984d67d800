# Progress during training, and silence with verbose = FALSE.

test_that("verbose = TRUE reports the steps and the training epochs as R messages", {
  skip_if_no_python()
  skip_if_no_seurat_object()
  msgs <- character()
  res <- withCallingHandlers(
    RunScVI(SeuratObject::pbmc_small, batch_key = "groups", max_epochs = 4),
    message = function(m) {
      msgs <<- c(msgs, conditionMessage(m))
      invokeRestart("muffleMessage")
    }
  )
  expect_true(any(grepl("Reading the Seurat object", msgs, fixed = TRUE)))
  expect_true(any(grepl("scVI epoch 1/4", msgs, fixed = TRUE)))
  expect_true(any(grepl("scVI epoch 4/4, ELBO [0-9.]+", msgs)))
  expect_true(any(grepl("Added the reductions", msgs, fixed = TRUE)))
  # messages can be silenced the R way
  expect_silent(suppressMessages(RunScVI(SeuratObject::pbmc_small, batch_key = "groups", max_epochs = 2)))
})

test_that("verbose = FALSE prints nothing at all, not even from Python or Lightning", {
  skip_if_no_python()
  skip_if_no_seurat_object()
  skip_if_not_installed("callr")
  # A fresh R process, so Python starts inside the call; its whole stdout and stderr are kept.
  out <- withr::local_tempfile()
  err <- withr::local_tempfile()
  python <- scvi_python()
  dims <- callr::r(
    function(python) {
      options(pyscvibridge.python = python)
      obj <- SeuratObject::pbmc_small
      res <- pyscvibridge::RunScVI(obj, batch_key = "groups", max_epochs = 3, verbose = FALSE)
      dim(res@reductions$scVI@cell.embeddings)
    },
    args = list(python = python), libpath = .libPaths(), stdout = out, stderr = err
  )
  expect_identical(dims, c(80L, 10L))
  expect_identical(readLines(out), character())
  expect_identical(readLines(err), character())
})
