# RunScVI() for SingleCellExperiment objects.

#' @rdname RunScVI
#' @export
RunScVI.SingleCellExperiment <- function(object, batch_key, labels_key = NULL, assay = "counts",
                                         categorical_covariate_keys = NULL,
                                         continuous_covariate_keys = NULL, n_top_genes = 2000,
                                         n_latent = 10, max_epochs = NULL, preset = NULL, seed = 0,
                                         accelerator = "auto", devices = "auto", scanvi = FALSE,
                                         unlabeled_category = "Unknown", scanvi_epochs = NULL,
                                         save_model = NULL, corrected_genes = NULL,
                                         transform_batch = NULL, verbose = TRUE, ...) {
  .check_dots_empty(...)
  call <- environment()
  .need_packages(c("SingleCellExperiment", "SummarizedExperiment", "S4Vectors"))
  verbose <- .check_flag(verbose, "verbose")
  .check_string(assay, "assay")
  assays <- SummarizedExperiment::assayNames(object)
  if (!assay %in% assays) {
    cli::cli_abort(
      c(
        "{.arg assay} {.val {assay}} is not an assay of this SingleCellExperiment.",
        "i" = if (length(assays)) "Assays present: {.val {assays}}." else "It has no named assays."
      ),
      class = "pyscvibridge_error"
    )
  }
  meta <- SummarizedExperiment::colData(object)
  if (missing(batch_key) || is.null(batch_key)) {
    cols <- colnames(meta)
    cli::cli_abort(
      c(
        "{.arg batch_key} is required: name the {.code colData} column that holds the batch.",
        "i" = "Available columns: {.val {cols}}."
      ),
      class = "pyscvibridge_error"
    )
  }
  .check_column(meta, batch_key, "batch_key", what = "colData")
  if (!is.null(labels_key)) .check_column(meta, labels_key, "labels_key", what = "colData")
  args <- c(
    list(kind = "sce", assay = assay, layer = assay),
    .integrate_args(
      meta, batch_key, labels_key, categorical_covariate_keys, continuous_covariate_keys, preset,
      n_top_genes, n_latent, max_epochs, seed, accelerator, devices,
      what = "colData"
    ),
    .scanvi_args(labels_key, scanvi, unlabeled_category, scanvi_epochs, save_model),
    .expression_args(corrected_genes, transform_batch, rownames(object), unique(as.character(meta[[batch_key]])))
  )
  out <- .call_door("run_integrate", object, args,
    verbose = verbose, arguments = c(layer = "assay"), call = call
  )
  .check_sce_result(object, out$result)
  out$result
}

.check_sce_result <- function(object, result) {
  cells <- colnames(object)
  ok <- methods::is(result, "SingleCellExperiment") &&
    identical(colnames(result), cells) &&
    all(c("scVI", "UMAP_scVI") %in% SingleCellExperiment::reducedDimNames(result)) &&
    nrow(SingleCellExperiment::reducedDim(result, "scVI")) == length(cells)
  if (!ok) {
    cli::cli_abort(c(
      "Internal error: Python returned a result that does not match the input object.",
      "i" = "Please report this at the project's issue tracker."
    ))
  }
  invisible(result)
}

.need_packages <- function(pkgs, call = parent.frame()) {
  missing <- pkgs[!vapply(pkgs, requireNamespace, logical(1), quietly = TRUE)]
  if (length(missing)) {
    cli::cli_abort("This needs the Bioconductor package{?s} {.pkg {missing}}; install {?it/them} first.", call = call)
  }
  invisible()
}
