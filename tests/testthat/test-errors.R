# Bad input: each a cli error naming the argument, before any training.

test_that("a missing batch column is an error listing the available columns", {
  skip_if_no_python() # checked in Python, against the object
  skip_if_no_seurat_object()
  pbmc <- SeuratObject::pbmc_small
  err <- expect_error(RunScVI(pbmc, batch_key = "sample", verbose = FALSE), class = "pyscvibridge_error")
  msg <- cli::ansi_strip(conditionMessage(err))
  expect_match(msg, "`batch_key`", fixed = TRUE)
  expect_match(msg, "\"sample\"", fixed = TRUE)
  expect_match(msg, "\"groups\"", fixed = TRUE)
  expect_match(msg, "\"orig.ident\"", fixed = TRUE)
})

test_that("no batch column for a joined object is an error", {
  skip_if_no_python() # checked in Python, against the object
  skip_if_no_seurat_object()
  err <- expect_error(RunScVI(SeuratObject::pbmc_small, verbose = FALSE), class = "pyscvibridge_error")
  expect_match(conditionMessage(err), "`batch_key` is required", fixed = TRUE)
})

test_that("a batch column with missing values is an error", {
  skip_if_no_python() # checked in Python, against the object
  skip_if_no_seurat_object()
  pbmc <- SeuratObject::pbmc_small
  pbmc@meta.data$groups[3] <- NA
  err <- expect_error(RunScVI(pbmc, batch_key = "groups", verbose = FALSE), class = "pyscvibridge_error")
  expect_match(conditionMessage(err), "1 missing value", fixed = TRUE)
})

test_that("an unknown labels column is an error naming labels_key", {
  skip_if_no_python() # checked in Python, against the object
  skip_if_no_seurat_object()
  err <- expect_error(
    RunScVI(SeuratObject::pbmc_small, batch_key = "groups", labels_key = "celltype", verbose = FALSE),
    class = "pyscvibridge_error"
  )
  expect_match(conditionMessage(err), "`labels_key`", fixed = TRUE)
})

test_that("an unknown assay is an error listing the assays", {
  skip_if_no_python() # checked in Python, against the object
  skip_if_no_seurat_object()
  err <- expect_error(
    RunScVI(SeuratObject::pbmc_small, batch_key = "groups", assay = "ADT", verbose = FALSE),
    class = "pyscvibridge_error"
  )
  msg <- conditionMessage(err)
  expect_match(msg, "`assay`", fixed = TRUE)
  expect_match(msg, "\"ADT\"", fixed = TRUE)
  expect_match(msg, "\"RNA\"", fixed = TRUE)
})

test_that("an unknown layer is an error listing the layers", {
  skip_if_no_python() # checked in Python, against the object
  obj <- read_fixture("cellbench_small_v5.rds")
  err <- expect_error(RunScVI(obj, batch_key = "batch", layer = "raw", verbose = FALSE), class = "pyscvibridge_error")
  msg <- conditionMessage(err)
  expect_match(msg, "`layer`", fixed = TRUE)
  expect_match(msg, "\"counts\"", fixed = TRUE)
})

test_that("normalised data given as counts is an error naming the layer", {
  skip_if_no_python()
  skip_if_no_seurat_object()
  err <- expect_error(
    RunScVI(SeuratObject::pbmc_small, batch_key = "groups", layer = "data", verbose = FALSE),
    class = "pyscvibridge_error"
  )
  msg <- conditionMessage(err)
  expect_match(msg, "`layer`", fixed = TRUE)
  expect_match(msg, "raw counts", fixed = TRUE)
  expect_match(msg, "non-integer", fixed = TRUE)
})

test_that("log-normalised values in the counts layer are refused", {
  skip_if_no_python()
  skip_if_no_seurat_object()
  pbmc <- SeuratObject::pbmc_small
  pbmc@assays$RNA@counts <- pbmc@assays$RNA@data
  err <- expect_error(RunScVI(pbmc, batch_key = "groups", verbose = FALSE), class = "pyscvibridge_error")
  expect_match(conditionMessage(err), "looks log-normalised", fixed = TRUE)
})

test_that("bad parameter values and misspelled arguments are errors naming them", {
  skip_if_no_seurat_object()
  pbmc <- SeuratObject::pbmc_small
  expect_error(RunScVI(pbmc, batch_key = "groups", n_latent = 0), "`n_latent`")
  expect_error(RunScVI(pbmc, batch_key = "groups", max_epochs = 2.5), "`max_epochs`")
  expect_error(RunScVI(pbmc, batch_key = "groups", verbose = NA), "`verbose`")
  expect_error(RunScVI(pbmc, batch_key = c("groups", "orig.ident")), "`batch_key`")
  expect_error(RunScVI(pbmc, batch_key = "groups", n_epochs = 3), "`n_epochs`")
})

test_that("an object that is neither Seurat nor SingleCellExperiment is an error", {
  expect_error(RunScVI(matrix(1:4, 2)), "must be a <Seurat> object or a <SingleCellExperiment>")
})
