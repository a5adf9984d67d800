#' Integrate batches with scVI
#'
#' Runs the standard scVI integration (scvi-tools) on a Seurat or SingleCellExperiment object and
#' returns the same object with the scVI latent space and its UMAP added; nothing else in the
#' object changes, and cells keep their names and order.
#'
#' The steps are those of the Python function `pyscvibridge.integrate()`: raw counts from `assay` /
#' `layer` (checked to be non-negative integers); genes with no counts dropped; batch-aware highly
#' variable genes (Seurat-like `cell_ranger` flavour, `n_top_genes` of them); scVI trained on their
#' counts with the batch as covariate; a UMAP of the scVI latent.
#'
#' Python runs inside this R session (through reticulate): it reads the object from R's memory, so
#' no file is written and the count matrix is not copied back. The Python interpreter is found as
#' described in [scvi_python()].
#'
#' @section Seurat:
#' Adds the dimensional reductions `scVI` (key `scVI_`, `n_latent` columns) and `umap.scVI` (key
#' `umapscVI_`), both tied to `assay`, and the parameters, package versions and training history
#' (per-epoch ELBO) to `object@misc$scVI`. Works with Seurat v4 (`Assay`) and v5 (`Assay5`)
#' objects; with split v5 layers (`counts.<batch>`, from `split()`), there is no need to run
#' `JoinLayers()`, and `batch_key` defaults to the split.
#'
#' With `scanvi = TRUE`, also the reductions `scANVI` (key `scANVI_`) and `umap.scANVI` (key
#' `umapscANVI_`) and the cell-metadata columns `scanvi_prediction` (a factor of the known labels)
#' and `scanvi_probability` (the classifier's probability of that label); the scANVI parameters
#' and history go to `object@misc$scVI$scanvi`. With `corrected_genes`, also the assay `scVI`
#' (key `scvi_`) holding their corrected expression in its `data` slot.
#'
#' @section SingleCellExperiment:
#' Adds the reduced dimensions `scVI` and `UMAP_scVI`, and the provenance to
#' `metadata(object)$scVI`; with `scanvi = TRUE`, also the reduced dimensions `scANVI` and
#' `UMAP_scANVI` and the `colData` columns `scanvi_prediction` and `scanvi_probability`; with
#' `corrected_genes`, the `altExp` `scVI` (assay `normalized`).
#'
#' @param object A `Seurat` object or a `SingleCellExperiment`.
#' @param batch_key Name of the cell-metadata column (`meta.data` / `colData`) that holds the batch
#'   (sample, protocol, ...) to integrate over. For a Seurat v5 object with split layers it may be
#'   left `NULL` to integrate over the split.
#' @param labels_key Optional cell-metadata column with known cell labels; recorded with the
#'   results. scVI does not use it; scANVI (`scanvi = TRUE`) learns from it.
#' @param assay Seurat: the assay to use (default: the default assay). SingleCellExperiment: the
#'   assay holding raw counts (default `"counts"`).
#' @param layer Seurat only: the layer (v5) or slot (v4) holding raw counts, `"counts"` by default.
#' @param categorical_covariate_keys,continuous_covariate_keys Optional cell-metadata columns with
#'   further nuisance covariates for scVI besides the batch, e.g. a donor (categorical) or the
#'   percentage of mitochondrial counts (continuous, numeric).
#' @param n_top_genes Number of highly variable genes scVI is trained on.
#' @param n_latent Dimension of the scVI latent space.
#' @param max_epochs Training epochs; `NULL` uses the preset's schedule for the number of cells.
#' @param preset Training schedule: `"fast"` (the Python package's default: a quarter of the
#'   epochs at a higher learning rate and a cheaper exact likelihood, for the same model) or `"scvi-tools"` (scvi-tools' defaults exactly). `NULL` uses the Python default.
#' @param seed Random seed (scvi-tools, PCA, UMAP): the same seed gives the same result.
#' @param accelerator `"auto"`, `"cpu"` or `"gpu"`; passed to Lightning.
#' @param devices `"auto"`, a number of devices, or device ids; passed to Lightning.
#' @param scanvi Continue with scANVI (scvi-tools' semi-supervised model, started from the trained
#'   scVI model) on the labels in `labels_key`, and predict every cell's label. Needs `labels_key`.
#' @param unlabeled_category The label value meaning "unknown" in `labels_key`; those cells (and
#'   cells with NA) are unlabelled in scANVI training.
#' @param scanvi_epochs scANVI training epochs; `NULL` uses scvi-tools' rule for a pretrained
#'   model (between 2 and 10).
#' @param save_model Optional path of a directory (new or empty) to save the trained model in, in
#'   scvi-tools' format (the scANVI model when `scanvi = TRUE`); its path is recorded in the
#'   provenance (`$model$path`). Map new cells onto it with [MapScVIQuery()].
#' @param corrected_genes Optional genes (names as in the object) to return scVI's batch-corrected
#'   normalised expression for (scvi-tools' `get_normalized_expression()`, scaled to 10,000 counts per
#'   cell, computed in chunks of cells). Those not among the highly variable genes are added to the
#'   genes the model trains on (listed in the provenance, `$params$extra_genes_added`, and said). Seurat: a new assay `scVI` (features x cells, in the `data` slot/layer); SCE: an
#'   `altExp` `scVI` with the assay `normalized`.
#' @param transform_batch For `corrected_genes`: `NULL` decodes every cell in its own batch
#'   (denoised, not batch-corrected); a batch name decodes every cell as if from that batch (several
#'   names: averaged over them), which removes the batch effect; `"all"` averages over every batch.
#' @param n_layers,n_hidden Hidden layers of scVI's encoder and decoder, and nodes per hidden
#'   layer (`NULL`: scvi-tools' defaults, 1 and 128).
#' @param gene_likelihood The count distribution: `"zinb"` (zero-inflated negative binomial,
#'   scvi-tools' default), `"nb"` or `"poisson"`.
#' @param dispersion `"gene"` (scvi-tools' default), `"gene-batch"`, `"gene-label"` or `"gene-cell"`.
#' @param dropout_rate Dropout in the encoder, from 0 up to (not including) 1 (default 0.1).
#' @param model_kwargs,train_kwargs Optional named lists of further arguments for
#'   `scvi.model.SCVI()` and its `train()` (e.g. `list(latent_distribution = "ln")`,
#'   `list(batch_size = 256)`). The model options are recorded in the provenance
#'   (`$model_kwargs`). Values are checked in Python; an invalid one is an error naming the argument.
#' @param verbose Report the steps and the training progress (epochs, ELBO, time left) as
#'   messages. `FALSE` prints nothing.
#' @param ... Must be empty; there to catch misspelled arguments.
#'
#' @return `object`, with the reductions and provenance added.
#' @export
#' @examples
#' if (scvi_available() && requireNamespace("SeuratObject", quietly = TRUE)) {
#'   pbmc <- SeuratObject::pbmc_small
#'   pbmc <- RunScVI(pbmc, batch_key = "groups", max_epochs = 5, verbose = FALSE)
#'   dim(SeuratObject::Embeddings(pbmc, "scVI"))
#'   head(SeuratObject::Embeddings(pbmc, "umap.scVI"))
#' }
RunScVI <- function(object, ...) {
  UseMethod("RunScVI")
}

#' @export
RunScVI.default <- function(object, ...) {
  cli::cli_abort(
    c(
      "{.arg object} must be a {.cls Seurat} object or a {.cls SingleCellExperiment}, not {.cls {class(object)}}.",
      "i" = "For an AnnData, call {.code pyscvibridge.integrate()} in Python."
    ),
    class = "pyscvibridge_error"
  )
}
