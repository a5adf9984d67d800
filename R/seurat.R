# RunScVI() for Seurat objects. Nothing here reads the object's slots: Python reads the object
# (pyscvibridge.convert, for SeuratObject 4 and 5, and v5 objects under SeuratObject 4) and checks
# the assay, layer and columns against it.

#' @rdname RunScVI
#' @export
RunScVI.Seurat <- function(object, batch_key = NULL, labels_key = NULL, assay = NULL,
                           layer = "counts", categorical_covariate_keys = NULL,
                           continuous_covariate_keys = NULL, n_top_genes = 2000, n_latent = 10,
                           max_epochs = NULL, preset = NULL, seed = 0, accelerator = "auto",
                           devices = "auto", scanvi = FALSE, unlabeled_category = "Unknown",
                           scanvi_epochs = NULL, save_model = NULL, corrected_genes = NULL,
                           transform_batch = NULL, n_layers = NULL, n_hidden = NULL,
                           gene_likelihood = NULL, dispersion = NULL, dropout_rate = NULL,
                           model_kwargs = NULL, train_kwargs = NULL, verbose = TRUE, ...) {
  .check_dots_empty(...)
  call <- environment()
  verbose <- .check_flag(verbose, "verbose")
  .check_string(assay, "assay", null_ok = TRUE)
  .check_string(layer, "layer")
  args <- c(
    list(kind = "seurat", assay = assay, layer = layer),
    .integrate_args(
      batch_key, labels_key, categorical_covariate_keys, continuous_covariate_keys, preset,
      n_top_genes, n_latent, max_epochs, seed, accelerator, devices, scanvi, unlabeled_category,
      scanvi_epochs, save_model, corrected_genes, transform_batch
    ),
    .model_args(
      n_layers = n_layers, n_hidden = n_hidden, gene_likelihood = gene_likelihood,
      dispersion = dispersion, dropout_rate = dropout_rate, model_kwargs = model_kwargs,
      train_kwargs = train_kwargs
    )
  )
  out <- .call_door("run_integrate", object, args, verbose = verbose, call = call)
  .check_result(object, out$result, "seurat")
  out$result
}

# The result must be the same kind of object with the same cells, in the same order, and the
# two reductions added.
.check_result <- function(object, result, kind) {
  names <- .conventions()$reductions[[kind]]
  added <- c(names$scvi, names$umap)
  ok <- if (kind == "seurat") {
    cells <- rownames(object@meta.data)
    methods::is(result, "Seurat") &&
      identical(rownames(result@meta.data), cells) &&
      all(added %in% names(result@reductions)) &&
      identical(rownames(result@reductions[[names$scvi]]@cell.embeddings), cells)
  } else {
    cells <- colnames(object)
    methods::is(result, "SingleCellExperiment") &&
      identical(colnames(result), cells) &&
      all(added %in% SingleCellExperiment::reducedDimNames(result)) &&
      nrow(SingleCellExperiment::reducedDim(result, names$scvi)) == ncol(object)
  }
  if (!ok) {
    cli::cli_abort(
      c(
        "Internal error: Python returned a result that does not match the input object.",
        "i" = "Please report this at the project's issue tracker."
      ),
      .internal = FALSE
    )
  }
  invisible(result)
}
