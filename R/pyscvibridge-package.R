#' pyscvibridge: integrate Seurat and SingleCellExperiment objects with scVI
#'
#' [RunScVI()] integrates the batches of a Seurat (v4 or v5, joined or split layers) or
#' SingleCellExperiment object with scVI and returns the same object with the scVI latent space
#' and its UMAP added. Python (scvi-tools) runs in the same R session through reticulate and reads
#' the object from R's memory with rpy2; [scvi_python()] tells which Python is used and how it is
#' found.
#'
#' @keywords internal
#' @useDynLib pyscvibridge, .registration = TRUE
"_PACKAGE"
