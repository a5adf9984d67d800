# Multi-assay objects: an active assay that is not gene expression is refused, naming the assays
# and `assay`; the check is the Python library's (pyscvibridge._assays), reached through the pipeline.

cite_like <- function() {
  # pbmc_small (RNA, 230 genes x 80 cells) with a 30-feature ADT assay made the active one, as after
  # CITE-seq.
  pbmc <- SeuratObject::pbmc_small
  set.seed(1)
  m <- matrix(stats::rpois(30 * ncol(pbmc), 20), 30, dimnames = list(paste0("CD", 1:30), colnames(pbmc)))
  pbmc[["ADT"]] <- SeuratObject::CreateAssayObject(counts = m)
  SeuratObject::DefaultAssay(pbmc) <- "ADT"
  pbmc
}

test_that("an active ADT assay is refused naming RNA and the assay argument, the object untouched", {
  skip_if_no_python()
  skip_if_no_seurat_object()
  pbmc <- cite_like()
  before <- pbmc
  err <- expect_error(RunScVI(pbmc, batch_key = "groups", verbose = FALSE), class = "pyscvibridge_error")
  msg <- cli::ansi_strip(conditionMessage(err))
  expect_match(msg, "Problem with `assay`", fixed = TRUE)
  expect_match(msg, "\"ADT\" does not look like gene expression", fixed = TRUE)
  expect_match(msg, "RNA (230 features x 80 cells)", fixed = TRUE)
  expect_match(msg, "assay = \"RNA\"", fixed = TRUE)
  expect_identical(pbmc, before)
})

test_that("assay = \"RNA\" integrates the same object", {
  skip_if_no_python()
  skip_if_no_seurat_object()
  pbmc <- RunScVI(cite_like(), batch_key = "groups", assay = "RNA", max_epochs = 2, verbose = FALSE)
  emb <- SeuratObject::Embeddings(pbmc, "scVI")
  expect_identical(dim(emb), c(80L, 10L))
  expect_identical(pbmc@reductions$scVI@assay.used, "RNA")
})
