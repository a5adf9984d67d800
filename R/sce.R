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
                                         transform_batch = NULL, n_layers = NULL, n_hidden = NULL,
                                         gene_likelihood = NULL, dispersion = NULL,
                                         dropout_rate = NULL, model_kwargs = NULL,
                                         train_kwargs = NULL, verbose = TRUE, ...) {
  .check_dots_empty(...)
  call <- environment()
  .need_packages(c("SingleCellExperiment", "SummarizedExperiment", "S4Vectors"))
  verbose <- .check_flag(verbose, "verbose")
  .check_string(assay, "assay")
  if (missing(batch_key) || is.null(batch_key)) {
    cli::cli_abort(
      c(
        "{.arg batch_key} is required: name the {.code colData} column that holds the batch.",
        "i" = "Available columns: {.val {colnames(SummarizedExperiment::colData(object))}}."
      ),
      class = "pyscvibridge_error"
    )
  }
  args <- c(
    list(kind = "sce", assay = assay, layer = assay),
    .integrate_args(
      batch_key, labels_key, categorical_covariate_keys, continuous_covariate_keys, preset,
      n_top_genes, n_latent, max_epochs, seed, accelerator, devices, scanvi, unlabeled_category,
      scanvi_epochs, save_model, corrected_genes, transform_batch
    ),
    .model_args(
      n_layers = n_layers, n_hidden = n_hidden, gene_likelihood = gene_likelihood,
      dispersion = dispersion, dropout_rate = dropout_rate, model_kwargs = model_kwargs,
      train_kwargs = train_kwargs
    ),
    list(renamed = list(layer = "assay"))
  )
  out <- .call_door("run_integrate", object, args,
    verbose = verbose, arguments = c(layer = "assay"), call = call
  )
  .check_result(object, out$result, "sce")
  out$result
}

.need_packages <- function(pkgs, call = parent.frame()) {
  missing <- pkgs[!vapply(pkgs, requireNamespace, logical(1), quietly = TRUE)]
  if (length(missing)) {
    cli::cli_abort(
      "This needs the Bioconductor package{?s} {.pkg {missing}}; install {?it/them} first.",
      class = "pyscvibridge_error", call = call
    )
  }
  invisible()
}
