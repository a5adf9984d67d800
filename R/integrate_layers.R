# scVIIntegration(): scVI as a Seurat 5 integration method, for
# IntegrateLayers(obj, method = pyscvibridge::scVIIntegration). IntegrateLayers() calls it with
# one assay (not the Seurat object), the names of its normalised layers and the features, and adds
# every element of the returned named list to the object with `object[[name]] <- value[[name]]`.
# Only slots are read here, so the same code serves SeuratObject 4 and 5.

#' scVI integration as a Seurat 5 `IntegrateLayers()` method
#'
#' Integrates the layers of a Seurat 5 assay with scVI (scvi-tools), the way Seurat's own methods
#' do: `IntegrateLayers(obj, method = pyscvibridge::scVIIntegration)` adds the reduction
#' `integrated.scvi`, on which `FindNeighbors()`, `FindClusters()` and `RunUMAP()` run as on any
#' other. The argument names are those of SeuratWrappers' `scVIIntegration` (`new.reduction`,
#' `ndims`, `nlayers`, `gene_likelihood`, `max_epochs`, `groups`, `verbose`), so a call written for
#' it runs here without conda, without `JoinLayers()` and without a copy of the count matrix.
#'
#' The model is trained on the raw counts: the `counts` layers of the assay (`counts.<batch>` when
#' split), whatever normalised `layers` `IntegrateLayers()` passes, read from R's memory in the
#' same R session (Python runs in-process through reticulate; see [scvi_python()]). The batches are
#' the split layers, or `groups` when given. The genes are `features` (by default, the variable
#' features `IntegrateLayers()` chose), or with `hvg = "pyscvibridge"` pyscvibridge's batch-aware
#' highly variable genes (`n_top_genes` of them, as [RunScVI()] picks them).
#'
#' The defaults are scvi-tools' (10 latent dimensions, one hidden layer, a zero-inflated negative
#' binomial), as in [RunScVI()]: the same seed and settings give the same embedding as
#' `RunScVI()`. SeuratWrappers' defaults are `ndims = 30, nlayers = 2, gene_likelihood = "nb"`.
#'
#' @section SCTransform-normalised assays:
#' For an `SCTAssay` (`assay = "SCT"`), `IntegrateLayers()` passes the SCT assay only; the raw
#' counts stay in the assay `SCTransform()` was run on, which a method does not get. scVIIntegration
#' then trains on the SCT assay's `counts`: SCTransform's corrected counts (whole numbers, depth
#' corrected per SCT model), with one batch per SCT model (`SCTransform()` run on split layers) unless
#' `groups` is given, and says so. To train on the raw counts instead, run
#' `IntegrateLayers(obj, method = scVIIntegration, assay = "RNA")` (after `split()` of that assay);
#' the reduction it adds is used with the SCT clusters the same way.
#'
#' @param object The assay (`IntegrateLayers()` passes `obj[[assay]]`): a Seurat v5 `Assay5`, a v3/v4
#'   `Assay` or an `SCTAssay`.
#' @param assay Name of the assay in the Seurat object; the new reductions are tied to it.
#' @param orig,scale.layer Passed by `IntegrateLayers()`; not used (scVI starts from the counts,
#'   not from a PCA).
#' @param layers Passed by `IntegrateLayers()` (the normalised layers, `data` or `data.<batch>`).
#'   Not used to choose cells or values: scVI reads every `counts` layer of the assay (all its cells),
#'   whatever normalised layers this names.
#' @param features Genes to train on; `IntegrateLayers()` passes the assay's variable features.
#'   Each must be a feature of the assay.
#' @param groups Optional batches instead of the split layers: a vector with one value per cell of
#'   the assay (in its order, or named by cell), or a data frame with the cells as row names (e.g.
#'   `obj[["sample"]]` or `obj[[]]` with `groups.name`). Needed when the assay is not split.
#' @param groups.name The column of a `groups` data frame to use; default: its first column.
#' @param new.reduction Name of the reduction to add (default `"integrated.scvi"`).
#' @param reduction.key Its key; default: `new.reduction` without non-alphanumerics, then `_`
#'   (`"integratedscvi_"`).
#' @param ndims,n_latent Dimensions of the scVI latent space (two names for the same thing;
#'   `ndims` is SeuratWrappers').
#' @param nlayers,n_layers Hidden layers of scVI's encoder and decoder (`n_layers` of
#'   `scvi.model.SCVI`; two names for the same thing, `nlayers` is SeuratWrappers').
#' @param gene_likelihood `"zinb"`, `"nb"` or `"poisson"`.
#' @param n_hidden,dispersion,dropout_rate,model_kwargs,train_kwargs Further scVI options, as in
#'   [RunScVI()]: nodes per hidden layer, `"gene"`, `"gene-batch"`, `"gene-label"` or `"gene-cell"`,
#'   dropout in \[0, 1), and named lists of other arguments of `scvi.model.SCVI` and its `train()`.
#' @param hvg `"features"` (train on `features`, or when it is `NULL` on pyscvibridge's highly
#'   variable genes) or `"pyscvibridge"` (pyscvibridge's batch-aware highly variable genes, ignoring
#'   `features`).
#' @param n_top_genes Number of highly variable genes when pyscvibridge picks them.
#' @param categorical_covariates,continuous_covariates Optional further covariates for scVI
#'   besides the batch: a data frame with one row per cell (e.g. `obj[[c("donor")]]`), or a named
#'   list of vectors, one value per cell. Continuous ones must be numeric.
#' @param labels Optional known cell labels, one per cell (`NA` or `unlabeled_category` for
#'   unknown): continues with scANVI and adds the reduction `scanvi.reduction` and the cell-metadata
#'   columns `scanvi_prediction` and `scanvi_probability`.
#' @param unlabeled_category The label value that means "unknown".
#' @param scanvi.reduction Name of the scANVI reduction (key as for `new.reduction`).
#' @param scanvi_epochs scANVI training epochs; `NULL` uses scvi-tools' rule.
#' @param max_epochs,preset,seed,accelerator,devices As in [RunScVI()].
#' @param conda_env Ignored (SeuratWrappers' argument): the Python is found as [scvi_python()] says.
#' @param verbose Report the steps and the training progress as messages.
#' @param ... Must be empty; there to catch misspelled arguments.
#'
#' @return A named list for `IntegrateLayers()`: `new.reduction` = a `DimReduc` over the assay's
#'   cells (in its order) with `n_latent` columns, tied to `assay`, with the parameters, versions
#'   and training record in its `misc$pyscvibridge`; with `labels`, also `scanvi.reduction` and the
#'   named vectors `scanvi_prediction` (a factor) and `scanvi_probability`.
#' @seealso [RunScVI()] for the whole object (adds a UMAP as well).
#' @export
#' @examples
#' \dontrun{
#' # Seurat 5: the integration vignette's flow
#' obj[["RNA"]] <- split(obj[["RNA"]], f = obj$batch)
#' obj <- NormalizeData(obj)
#' obj <- FindVariableFeatures(obj)
#' obj <- ScaleData(obj)
#' obj <- RunPCA(obj)
#' obj <- IntegrateLayers(obj, method = pyscvibridge::scVIIntegration, verbose = FALSE)
#' obj <- FindNeighbors(obj, reduction = "integrated.scvi", dims = 1:10)
#' obj <- FindClusters(obj)
#' obj <- RunUMAP(obj, reduction = "integrated.scvi", dims = 1:10, reduction.name = "umap.scvi")
#' obj <- JoinLayers(obj)
#' }
scVIIntegration <- function(object, assay = NULL, orig = NULL, layers = NULL, scale.layer = NULL,
                            features = NULL, groups = NULL, groups.name = NULL,
                            new.reduction = "integrated.scvi", reduction.key = NULL, ndims = 10,
                            n_latent = ndims, nlayers = 1, n_layers = nlayers,
                            gene_likelihood = "zinb", n_hidden = NULL, dispersion = NULL,
                            dropout_rate = NULL, model_kwargs = NULL, train_kwargs = NULL,
                            hvg = c("features", "pyscvibridge"), n_top_genes = 2000,
                            categorical_covariates = NULL, continuous_covariates = NULL,
                            labels = NULL, unlabeled_category = "Unknown",
                            scanvi.reduction = "integrated.scanvi", scanvi_epochs = NULL,
                            max_epochs = NULL, preset = NULL, seed = 0, accelerator = "auto",
                            devices = "auto", conda_env = NULL, verbose = TRUE, ...) {
  .check_dots_empty(..., fn = "scVIIntegration")
  call <- environment()
  verbose <- .check_flag(verbose, "verbose")
  kind <- .il_assay_kind(object)
  assay <- assay %||% (if (methods::is(orig, "DimReduc")) orig@assay.used) %||% "RNA"
  .check_string(assay, "assay")
  cells <- .il_assay_cells(object)
  n_cells <- length(cells)

  if (!missing(ndims) && !missing(n_latent) && !identical(as.numeric(ndims), as.numeric(n_latent))) {
    .il_abort("{.arg ndims} ({ndims}) and {.arg n_latent} ({n_latent}) are the same setting; give one of them.")
  }
  if (!missing(nlayers) && !missing(n_layers) && !identical(as.numeric(nlayers), as.numeric(n_layers))) {
    .il_abort("{.arg nlayers} ({nlayers}) and {.arg n_layers} ({n_layers}) are the same setting; give one of them.")
  }
  # The names these arguments have here where they differ from pyscvibridge's (for messages).
  renamed <- c(
    n_latent = if (missing(n_latent)) "ndims" else "n_latent",
    n_layers = if (missing(n_layers)) "nlayers" else "n_layers",
    genes = "features", labels_key = "labels", scanvi = "labels"
  )
  n_latent <- .check_whole(n_latent, renamed[["n_latent"]])
  # Only types are checked here; values (n_layers >= 1, the likelihood's name, ...) in Python.
  model <- .model_args(
    list(n_layers = .check_whole(n_layers, renamed[["n_layers"]]), gene_likelihood = gene_likelihood),
    n_hidden, dispersion, dropout_rate, model_kwargs, train_kwargs
  )
  if (!is.character(hvg) || !length(hvg) || !hvg[[1]] %in% c("features", "pyscvibridge")) {
    .il_abort("{.arg hvg} must be {.val features} or {.val pyscvibridge}, not {.val {hvg}}.")
  }
  hvg <- hvg[[1]]
  new.reduction <- .il_name(new.reduction, "new.reduction")
  key <- .il_key(reduction.key, new.reduction, "reduction.key")
  if (!is.null(conda_env) && verbose) {
    cli::cli_inform(c("i" = "{.arg conda_env} is not used: pyscvibridge runs {.file {scvi_python()}} (see {.fn scvi_python})."))
  }

  batches <- .il_groups(groups, groups.name, cells)
  groups_from <- "groups"
  split <- .il_split_layers(object, kind)
  if (is.null(batches) && kind == "sct") {
    batches <- .il_sct_models(object, cells)
    groups_from <- "the SCT models"
  }
  if (is.null(batches) && kind == "sct") {
    .il_abort(c(
      "Assay {.val {assay}} is an SCTAssay with a single SCT model and no {.arg groups} were given, so nothing says which batch each cell is in.",
      "i" = "Pass the batch, e.g. {.code groups = obj$batch}, or run SCTransform() on split layers."
    ))
  }
  if (is.null(batches) && length(split) < 1L) {
    present <- .il_layers(object)
    .il_abort(c(
      "Assay {.val {assay}} is not split into layers and no {.arg groups} were given, so nothing says which batch each cell is in.",
      "i" = "Layers present: {.val {present}}.",
      "i" = "Split it first ({.code obj[[\"{assay}\"]] <- split(obj[[\"{assay}\"]], f = obj$batch)}) or pass {.code groups = obj$batch}."
    ))
  }
  if (kind == "sct" && verbose) {
    cli::cli_inform(c("i" = paste(
      "Assay {.val {assay}} is an SCTAssay: scVI trains on its {.field counts}, SCTransform's corrected counts;",
      "the raw counts stay in the assay SCTransform was run on. For those, use {.code IntegrateLayers(..., assay = \"RNA\")}."
    )))
  }

  if (hvg == "pyscvibridge") features <- NULL
  if (!is.null(features)) {
    if (!is.character(features) || !length(features) || anyNA(features)) {
      .il_abort("{.arg features} must be a character vector of feature names, not {.cls {class(features)}}.")
    }
    features <- unique(features) # whether they are features of the assay: checked in Python
  }
  covariates <- .il_covariates(categorical_covariates, continuous_covariates, cells)
  if (!is.null(labels)) {
    if (is.data.frame(labels)) labels <- labels[[1]]
    if (!is.atomic(labels) || length(labels) != n_cells) {
      .il_abort("{.arg labels} must have one value per cell of the assay ({n_cells}), not {length(labels)}.")
    }
    if (!is.null(names(labels)) && all(cells %in% names(labels))) labels <- labels[cells]
    labels <- as.character(labels)
    .check_string(unlabeled_category, "unlabeled_category")
    scanvi.reduction <- .il_name(scanvi.reduction, "scanvi.reduction")
  }

  args <- list(
    assay = assay,
    categorical_covariate_keys = if (length(covariates$categorical)) as.list(covariates$categorical),
    continuous_covariate_keys = if (length(covariates$continuous)) as.list(covariates$continuous),
    n_top_genes = .check_whole(n_top_genes, "n_top_genes"),
    n_latent = n_latent,
    model_kwargs = model$model_kwargs,
    train_kwargs = model$train_kwargs,
    preset = .check_string(preset, "preset", null_ok = TRUE),
    max_epochs = .check_whole(max_epochs, "max_epochs", null_ok = TRUE),
    seed = .check_count(seed, "seed", min = 0),
    accelerator = .check_string(accelerator, "accelerator"),
    devices = .check_devices(devices),
    unlabeled_category = unlabeled_category,
    scanvi_epochs = .check_whole(scanvi_epochs, "scanvi_epochs", null_ok = TRUE),
    groups_from = groups_from,
    renamed = as.list(renamed)
  )
  if (verbose && !is.null(features)) {
    cli::cli_inform(c("i" = "Training on the {length(features)} given features (IntegrateLayers() passes the variable features)."))
  }
  handoff <- list(assay = object, groups = batches, covariates = covariates$frame, labels = labels, features = features)
  out <- .call_door("run_integrate_layers", handoff, args, verbose = verbose, arguments = renamed, call = call)
  res <- out$result
  if (!identical(rownames(res$latent), cells)) {
    cli::cli_abort("Internal error: Python returned a latent space over other cells than the assay's.")
  }
  value <- list()
  value[[new.reduction]] <- .il_dimreduc(res$latent, key, assay, list(pyscvibridge = res$record))
  if (!is.null(labels)) {
    skey <- .il_key(NULL, scanvi.reduction, "scanvi.reduction")
    value[[scanvi.reduction]] <- .il_dimreduc(res$scanvi, skey, assay, list(pyscvibridge = res$record$scanvi))
    value$scanvi_prediction <- structure(res$predictions$scanvi_prediction, names = cells)
    value$scanvi_probability <- structure(res$predictions$scanvi_probability, names = cells)
  }
  value
}

attr(scVIIntegration, "Seurat.method") <- "integration"

`%||%` <- function(x, y) if (is.null(x)) y else x

# The layers of an assay, read from its slots (SeuratObject 4 and 5): an Assay5's layer names, a
# v4 Assay's non-empty count / data / scale.data slots.
.il_layers <- function(a) {
  if (methods::.hasSlot(a, "layers")) {
    return(names(a@layers))
  }
  slots <- c("counts", "data", "scale.data")
  slots[vapply(slots, function(s) length(methods::slot(a, s)) > 0L, logical(1))]
}

.il_abort <- function(message, call = parent.frame()) {
  cli::cli_abort(message, class = "pyscvibridge_error", call = call, .envir = parent.frame())
}

.il_name <- function(x, arg, call = parent.frame()) {
  if (!is.character(x) || length(x) != 1L || is.na(x) || !nzchar(x)) {
    cli::cli_abort("{.arg {arg}} must be a single non-empty string.", class = "pyscvibridge_error", call = call)
  }
  x
}

# A DimReduc key from a name: letters and digits, starting with a letter, then "_".
.il_key <- function(key, name, arg, call = parent.frame()) {
  if (is.null(key)) {
    key <- gsub("[^a-zA-Z0-9]", "", name)
    if (!grepl("^[a-zA-Z]", key)) key <- paste0("X", key)
    return(paste0(key, "_"))
  }
  if (!is.character(key) || length(key) != 1L || !grepl("^[a-zA-Z][a-zA-Z0-9]*_$", key)) {
    cli::cli_abort("{.arg {arg}} must be letters and digits starting with a letter, then {.val _} (e.g. {.val scVI_}), not {.val {key}}.",
      class = "pyscvibridge_error", call = call
    )
  }
  key
}

# "v5" (Assay5), "sct" (SCTAssay) or "v4" (Assay); anything else is an error.
.il_assay_kind <- function(object, call = parent.frame()) {
  if (inherits(object, "Assay5")) {
    return("v5")
  }
  if (inherits(object, "SCTAssay")) {
    return("sct")
  }
  if (inherits(object, "Assay")) {
    return("v4")
  }
  cli::cli_abort(
    c(
      "{.arg object} must be a Seurat assay ({.cls Assay5}, {.cls Assay} or {.cls SCTAssay}), not {.cls {class(object)}}.",
      "i" = "Call {.code IntegrateLayers(obj, method = scVIIntegration)}; for a whole Seurat object, {.fn RunScVI} works too."
    ),
    class = "pyscvibridge_error", call = call
  )
}

# The cells of an assay, in its order: an Assay5's cells LogMap (read without SeuratObject 5
# methods), else the columns of its counts (or data) slot.
.il_assay_cells <- function(a) {
  if (methods::.hasSlot(a, "layers")) {
    m <- a@cells
    return(rownames(if (isS4(m)) m@.Data else m) %||% attr(m, "dimnames")[[1]])
  }
  colnames(a@counts) %||% colnames(a@data)
}

# The split counts layers (counts.<batch>) of an Assay5; none for other assays.
.il_split_layers <- function(a, kind) {
  if (kind != "v5") {
    return(character())
  }
  grep("^counts[.]", .il_layers(a), value = TRUE)
}

# One batch per SCT model, when SCTransform() ran on split layers (more than one model).
.il_sct_models <- function(a, cells) {
  models <- a@SCTModel.list
  if (length(models) < 2L) {
    return(NULL)
  }
  out <- rep(NA_character_, length(cells))
  for (m in names(models)) out[match(rownames(models[[m]]@cell.attributes), cells)] <- m
  if (anyNA(out)) NULL else out
}

# `groups` as one value per cell in the assay's order (NULL when not given): a factor (its levels'
# order kept, as RunScVI() keeps a factor column's) or a character vector.
.il_groups <- function(groups, groups.name, cells, call = parent.frame()) {
  if (is.null(groups)) {
    return(NULL)
  }
  if (is.data.frame(groups)) {
    name <- groups.name %||% names(groups)[1]
    if (!is.character(name) || length(name) != 1L || !name %in% names(groups)) {
      cli::cli_abort(
        c("{.arg groups.name} {.val {name}} is not a column of {.arg groups}.", "i" = "Columns: {.val {names(groups)}}."),
        class = "pyscvibridge_error", call = call
      )
    }
    values <- groups[[name]]
    rn <- rownames(groups)
    if (nrow(groups) == length(cells) && all(cells %in% rn)) values <- values[match(cells, rn)]
  } else {
    values <- groups
    if (!is.atomic(values) || is.matrix(values)) {
      cli::cli_abort("{.arg groups} must be a vector or a data frame, not {.cls {class(groups)}}.", class = "pyscvibridge_error", call = call)
    }
    if (length(values) == length(cells) && !is.null(names(values)) && all(cells %in% names(values))) values <- values[cells]
  }
  if (length(values) != length(cells)) {
    cli::cli_abort(
      c(
        "{.arg groups} has {length(values)} value{?s}, but the assay has {length(cells)} cells.",
        "i" = "Give one batch per cell, e.g. {.code groups = obj$batch} or {.code groups = obj[[\"batch\"]]}."
      ),
      class = "pyscvibridge_error", call = call
    )
  }
  if (anyNA(values)) {
    cli::cli_abort("{.arg groups} has {sum(is.na(values))} missing value{?s}; every cell needs a batch.", class = "pyscvibridge_error", call = call)
  }
  if (is.factor(values)) droplevels(values) else as.character(values)
}

# Covariates as one data frame over the assay's cells, with the names of each kind.
.il_covariates <- function(categorical, continuous, cells, call = parent.frame()) {
  frame <- data.frame(row.names = cells)
  names_of <- list(categorical = character(), continuous = character())
  for (kind in c("categorical", "continuous")) {
    x <- if (kind == "categorical") categorical else continuous
    arg <- paste0(kind, "_covariates")
    if (is.null(x)) next
    if (!is.list(x) || is.null(names(x)) || any(!nzchar(names(x)))) {
      cli::cli_abort("{.arg {arg}} must be a data frame or a named list of vectors with one value per cell.", class = "pyscvibridge_error", call = call)
    }
    rn <- if (is.data.frame(x)) rownames(x) else NULL
    for (name in names(x)) {
      v <- x[[name]]
      if (!is.atomic(v) || length(v) != length(cells)) {
        cli::cli_abort("{.arg {arg}} {.val {name}} must have one value per cell of the assay ({length(cells)}), not {length(v)}.",
          class = "pyscvibridge_error", call = call
        )
      }
      if (!is.null(rn) && all(cells %in% rn)) v <- v[match(cells, rn)]
      if (anyNA(v)) {
        cli::cli_abort("{.arg {arg}} {.val {name}} has missing values; every cell needs one.", class = "pyscvibridge_error", call = call)
      }
      if (kind == "continuous" && !is.numeric(v)) {
        cli::cli_abort("{.arg {arg}} {.val {name}} must be numeric, not {.cls {class(v)}}.", class = "pyscvibridge_error", call = call)
      }
      if (name %in% c(names(frame), "batch", "labels")) {
        cli::cli_abort("{.arg {arg}}: the name {.val {name}} is taken; rename that covariate.", class = "pyscvibridge_error", call = call)
      }
      frame[[name]] <- if (kind == "categorical") as.character(v) else as.numeric(v)
      names_of[[kind]] <- c(names_of[[kind]], name)
    }
  }
  list(frame = if (ncol(frame)) frame, categorical = names_of$categorical, continuous = names_of$continuous)
}

.il_dimreduc <- function(embeddings, key, assay, misc) {
  colnames(embeddings) <- paste0(key, seq_len(ncol(embeddings)))
  SeuratObject::CreateDimReducObject(embeddings = embeddings, key = key, assay = assay, misc = misc)
}
