# RunScVI() for Seurat objects. Only slots are read here (no SeuratObject generics), so the same
# code serves SeuratObject 4 and 5, and v5 objects (Assay5) read while SeuratObject 4 is installed.

#' @rdname RunScVI
#' @export
RunScVI.Seurat <- function(object, batch_key = NULL, labels_key = NULL, assay = NULL,
                           layer = "counts", categorical_covariate_keys = NULL,
                           continuous_covariate_keys = NULL, n_top_genes = 2000, n_latent = 10,
                           max_epochs = NULL, preset = NULL, seed = 0, accelerator = "auto",
                           devices = "auto", scanvi = FALSE, unlabeled_category = "Unknown",
                           scanvi_epochs = NULL, save_model = NULL, corrected_genes = NULL,
                           transform_batch = NULL, verbose = TRUE, ...) {
  .check_dots_empty(...)
  call <- environment()
  verbose <- .check_flag(verbose, "verbose")
  assay <- .seurat_assay(object, assay)
  .check_string(layer, "layer")
  layers <- .seurat_layers(object@assays[[assay]])
  split <- .seurat_split(layers, layer)
  if (!layer %in% layers && !length(split)) {
    cli::cli_abort(
      c(
        "{.arg layer} {.val {layer}} is not a layer of assay {.val {assay}}.",
        "i" = "Layers present: {.val {layers}}. Raw counts are usually in {.val counts}."
      ),
      class = "pyscvibridge_error"
    )
  }
  meta <- object@meta.data
  if (is.null(batch_key)) {
    if (!length(split)) {
      cols <- colnames(meta)
      cli::cli_abort(
        c(
          "{.arg batch_key} is required: name the cell-metadata column that holds the batch.",
          "i" = "Available columns: {.val {cols}}.",
          "i" = "(Only a Seurat v5 object whose layers are split by batch can leave it out.)"
        ),
        class = "pyscvibridge_error"
      )
    }
  } else {
    .check_column(meta, batch_key, "batch_key")
  }
  if (!is.null(labels_key)) .check_column(meta, labels_key, "labels_key")
  args <- c(
    list(kind = "seurat", assay = assay, layer = layer),
    .integrate_args(
      meta, batch_key, labels_key, categorical_covariate_keys, continuous_covariate_keys, preset,
      n_top_genes, n_latent, max_epochs, seed, accelerator, devices
    ),
    .scanvi_args(labels_key, scanvi, unlabeled_category, scanvi_epochs, save_model),
    .expression_args(
      corrected_genes, transform_batch, .seurat_features(object@assays[[assay]]),
      if (is.null(batch_key)) NULL else unique(as.character(meta[[batch_key]]))
    )
  )
  out <- .call_door("run_integrate", object, args, verbose = verbose, call = call)
  .check_seurat_result(object, out$result, assay)
  out$result
}

.seurat_assay <- function(object, assay, call = parent.frame()) {
  assays <- names(object@assays)
  if (is.null(assay)) {
    return(object@active.assay)
  }
  .check_string(assay, "assay", call = call)
  if (!assay %in% assays) {
    cli::cli_abort(
      c(
        "{.arg assay} {.val {assay}} is not an assay of this Seurat object.",
        "i" = "Assays present: {.val {assays}}."
      ),
      class = "pyscvibridge_error",
      call = call
    )
  }
  assay
}

# The features of an assay: an Assay5's (from its LogMap, read without SeuratObject 5 methods) or
# a v4 Assay's.
.seurat_features <- function(a) {
  if (methods::.hasSlot(a, "layers")) {
    f <- a@features
    return(rownames(if (isS4(f)) f@.Data else f) %||% attr(f, "dimnames")[[1]])
  }
  rownames(a@meta.features) %||% rownames(a@counts)
}

# Names of the layers that hold data: an Assay5's layers, or a v4 Assay's non-empty slots.
.seurat_layers <- function(a) {
  if (methods::.hasSlot(a, "layers")) {
    return(names(a@layers))
  }
  slots <- c("counts", "data", "scale.data")
  slots[vapply(slots, function(s) methods::.hasSlot(a, s) && length(methods::slot(a, s)) > 0, logical(1))]
}

# The split layers of `layer` (e.g. "counts.<batch>") when `layer` itself is not present.
.seurat_split <- function(layers, layer) {
  if (layer %in% layers) {
    return(character())
  }
  layers[startsWith(layers, paste0(layer, "."))]
}

# The result must hold the same cells, in the same order, with the two reductions added.
.check_seurat_result <- function(object, result, assay) {
  cells <- rownames(object@meta.data)
  ok <- methods::is(result, "Seurat") &&
    identical(rownames(result@meta.data), cells) &&
    all(c("scVI", "umap.scVI") %in% names(result@reductions)) &&
    identical(rownames(result@reductions[["scVI"]]@cell.embeddings), cells)
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
