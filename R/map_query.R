#' Map a query onto a saved scVI / scANVI reference
#'
#' Maps the cells of a new Seurat object or SingleCellExperiment (the query) onto a reference model
#' saved by [RunScVI()] with `save_model` (scArches-style: the query's batches are added to the
#' model and only their weights are trained). The query is returned with the same reductions as the
#' reference: its cells in the reference's latent space, a UMAP of them, and for a scANVI reference
#' the predicted labels.
#'
#' The query's genes are matched to the model's by name, then with `"_"` read as `"-"` (Seurat's
#' renaming); model genes the query lacks are filled with zeros, and a query that shares too few
#' genes with the model is an error. The counts must be raw counts, as for [RunScVI()].
#'
#' @section Seurat:
#' Adds the reductions `scVI` (key `scVI_`) and `umap.scVI` (key `umapscVI_`); for a scANVI
#' reference also `scANVI` and the cell-metadata columns `scanvi_prediction` and
#' `scanvi_probability`. The mapping's record (model, genes matched, epochs) goes to
#' `object@misc$scVI$query`.
#'
#' @section SingleCellExperiment:
#' Adds the reduced dimensions `scVI` and `UMAP_scVI` (for a scANVI reference also `scANVI` and
#' the `colData` columns `scanvi_prediction`, `scanvi_probability`), and the record to
#' `metadata(object)$scVI$query`.
#'
#' @param query A `Seurat` object or a `SingleCellExperiment` with raw counts.
#' @param model_dir Directory of the saved reference model (`save_model` of [RunScVI()]).
#' @param batch_key Cell-metadata column with the query's batches (new batches for the model).
#' @param assay,layer As for [RunScVI()]: where the query's raw counts are.
#' @param max_epochs Query training epochs; `NULL` uses scvi-tools' rule for the number of cells.
#' @param seed,accelerator,devices,verbose As for [RunScVI()].
#' @param train_kwargs Optional named list of further arguments for the query model's `train()`
#'   (e.g. `list(batch_size = 256)`). The model options (`n_layers`, `gene_likelihood`, ...) are
#'   the reference model's: a query is mapped onto the same architecture, so they cannot be given.
#' @param ... Must be empty; there to catch misspelled arguments.
#'
#' @return `query`, with the reductions, predictions and the mapping's record added.
#' @export
#' @examples
#' if (scvi_available() && requireNamespace("SeuratObject", quietly = TRUE)) {
#'   pbmc <- SeuratObject::pbmc_small
#'   dir <- file.path(tempdir(), "pbmc_scvi_model")
#'   ref <- RunScVI(pbmc[, pbmc$groups == "g1"], batch_key = "groups", max_epochs = 5,
#'                  save_model = dir, verbose = FALSE)
#'   query <- MapScVIQuery(pbmc[, pbmc$groups == "g2"], dir, batch_key = "groups",
#'                         max_epochs = 5, verbose = FALSE)
#'   dim(SeuratObject::Embeddings(query, "scVI"))
#'   unlink(dir, recursive = TRUE)
#' }
MapScVIQuery <- function(query, ...) {
  UseMethod("MapScVIQuery")
}

#' @export
MapScVIQuery.default <- function(query, ...) {
  cli::cli_abort(
    c(
      "{.arg query} must be a {.cls Seurat} object or a {.cls SingleCellExperiment}, not {.cls {class(query)}}.",
      "i" = "For an AnnData, call {.code pyscvibridge.map_query()} in Python."
    ),
    class = "pyscvibridge_error"
  )
}

#' @rdname MapScVIQuery
#' @export
MapScVIQuery.Seurat <- function(query, model_dir, batch_key = NULL, assay = NULL, layer = "counts",
                                max_epochs = NULL, seed = 0, accelerator = "auto", devices = "auto",
                                train_kwargs = NULL, verbose = TRUE, ...) {
  .check_dots_empty(..., fn = "MapScVIQuery")
  call <- environment()
  verbose <- .check_flag(verbose, "verbose")
  .check_string(assay, "assay", null_ok = TRUE)
  .check_string(layer, "layer")
  args <- c(
    list(kind = "seurat", assay = assay, layer = layer),
    .map_args(model_dir, batch_key, max_epochs, seed, accelerator, devices, train_kwargs)
  )
  out <- .call_door("run_map_query", query, args, verbose = verbose, call = call)
  out$result
}

#' @rdname MapScVIQuery
#' @export
MapScVIQuery.SingleCellExperiment <- function(query, model_dir, batch_key, assay = "counts",
                                              max_epochs = NULL, seed = 0, accelerator = "auto",
                                              devices = "auto", train_kwargs = NULL,
                                              verbose = TRUE, ...) {
  .check_dots_empty(..., fn = "MapScVIQuery")
  call <- environment()
  .need_packages(c("SingleCellExperiment", "SummarizedExperiment", "S4Vectors"))
  verbose <- .check_flag(verbose, "verbose")
  .check_string(assay, "assay")
  if (missing(batch_key)) batch_key <- ""
  args <- c(
    list(kind = "sce", assay = assay, layer = assay),
    .map_args(model_dir, batch_key, max_epochs, seed, accelerator, devices, train_kwargs)
  )
  out <- .call_door("run_map_query", query, args,
    verbose = verbose, arguments = c(layer = "assay"), call = call
  )
  out$result
}

.map_args <- function(model_dir, batch_key, max_epochs, seed, accelerator, devices, train_kwargs,
                      call = parent.frame()) {
  .check_string(model_dir, "model_dir", call = call)
  list(
    model_dir = normalizePath(model_dir, mustWork = FALSE),
    batch_key = .check_string(batch_key, "batch_key", null_ok = TRUE, call = call),
    max_epochs = .check_count(max_epochs, "max_epochs", null_ok = TRUE, call = call),
    seed = .check_count(seed, "seed", min = 0, call = call),
    accelerator = .check_string(accelerator, "accelerator", call = call),
    devices = .check_devices(devices, call = call),
    train_kwargs = .model_args(train_kwargs = train_kwargs, call = call)$train_kwargs
  )
}
