# Argument checks shared by the RunScVI() methods. Each error names the argument and the fix.

.check_string <- function(x, arg, null_ok = FALSE, call = parent.frame()) {
  if (is.null(x) && null_ok) {
    return(invisible(x))
  }
  if (!is.character(x) || length(x) != 1L || is.na(x) || !nzchar(x)) {
    cli::cli_abort("{.arg {arg}} must be a single non-empty string, not {.cls {class(x)}} of length {length(x)}.", call = call)
  }
  invisible(x)
}

.check_count <- function(x, arg, min = 1, null_ok = FALSE, call = parent.frame()) {
  if (is.null(x) && null_ok) {
    return(NULL)
  }
  if (!is.numeric(x) || length(x) != 1L || is.na(x) || x != round(x) || x < min) {
    cli::cli_abort("{.arg {arg}} must be a whole number of at least {min}, not {.val {x}}.", call = call)
  }
  as.integer(x)
}

.check_flag <- function(x, arg, call = parent.frame()) {
  if (!is.logical(x) || length(x) != 1L || is.na(x)) {
    cli::cli_abort("{.arg {arg}} must be {.code TRUE} or {.code FALSE}, not {.val {x}}.", call = call)
  }
  x
}

# "auto", a device count, or device ids; numbers go to Python as integers (Lightning rejects 1.0).
.check_devices <- function(x, call = parent.frame()) {
  if (is.character(x) && length(x) == 1L && !is.na(x)) {
    return(x)
  }
  if (is.numeric(x) && length(x) >= 1L && !anyNA(x) && all(x == round(x)) && all(x >= 0)) {
    x <- as.integer(x)
    return(if (length(x) == 1L) x else as.list(x))
  }
  cli::cli_abort("{.arg devices} must be {.val auto}, a number of devices or device ids, not {.val {x}}.", call = call)
}

# A cell-metadata column: present, and with a value for every cell.
.check_column <- function(meta, key, arg, what = "cell metadata", call = parent.frame()) {
  .check_string(key, arg, call = call)
  if (!key %in% colnames(meta)) {
    cols <- colnames(meta)
    cli::cli_abort(
      c(
        "{.arg {arg}} {.val {key}} is not a column of the {what}.",
        "i" = if (length(cols)) "Available columns: {.val {cols}}." else "The {what} has no columns."
      ),
      class = "pyscvibridge_error",
      call = call
    )
  }
  n_na <- sum(is.na(meta[[key]]))
  if (n_na > 0) {
    cli::cli_abort(
      c(
        "{.arg {arg}} {.val {key}} has {n_na} missing value{?s}; every cell needs one.",
        "i" = "Fill them (e.g. with {.val unknown}) or drop those cells first."
      ),
      class = "pyscvibridge_error",
      call = call
    )
  }
  invisible(key)
}

.check_dots_empty <- function(..., fn = "RunScVI", call = parent.frame()) {
  dots <- list(...)
  if (length(dots)) {
    nms <- names(dots)
    nms <- if (is.null(nms)) rep("", length(dots)) else nms
    shown <- ifelse(nzchar(nms), nms, paste0("..", seq_along(dots)))
    cli::cli_abort(
      c(
        paste(ngettext(length(shown), "Unknown argument", "Unknown arguments"), "to {.fn {fn}}: {.arg {shown}}."),
        "i" = "See {.run ?{fn}} for the arguments (did you misspell one?)."
      ),
      call = call
    )
  }
  invisible()
}

# Covariate columns: present, complete; continuous ones numeric. Returned as a list, so that one
# name still reaches Python as a list.
.check_covariates <- function(meta, keys, arg, numeric = FALSE, what = "cell metadata", call = parent.frame()) {
  if (is.null(keys)) {
    return(NULL)
  }
  if (!is.character(keys) || !length(keys) || anyNA(keys)) {
    cli::cli_abort("{.arg {arg}} must be a character vector of column names, not {.cls {class(keys)}}.", call = call)
  }
  for (key in keys) {
    .check_column(meta, key, arg, what = what, call = call)
    if (numeric && !is.numeric(meta[[key]])) {
      cli::cli_abort(
        c(
          "{.arg {arg}} {.val {key}} must be a numeric column, not {.cls {class(meta[[key]])}}.",
          "i" = "Categorical covariates go in {.arg categorical_covariate_keys}."
        ),
        class = "pyscvibridge_error",
        call = call
      )
    }
  }
  as.list(keys)
}

.check_preset <- function(preset, call = parent.frame()) {
  if (is.null(preset)) {
    return(NULL)
  }
  .check_string(preset, "preset", call = call)
  presets <- c("fast", "scvi-tools")
  if (!preset %in% presets) {
    cli::cli_abort("{.arg preset} must be one of {.val {presets}}, not {.val {preset}}.", call = call)
  }
  preset
}

# The parameters every method sends to Python, checked and typed.
.integrate_args <- function(meta, batch_key, labels_key, categorical_covariate_keys,
                            continuous_covariate_keys, preset, n_top_genes, n_latent, max_epochs,
                            seed, accelerator, devices, what = "cell metadata", call = parent.frame()) {
  list(
    batch_key = batch_key,
    labels_key = labels_key,
    categorical_covariate_keys = .check_covariates(
      meta, categorical_covariate_keys, "categorical_covariate_keys", what = what, call = call
    ),
    continuous_covariate_keys = .check_covariates(
      meta, continuous_covariate_keys, "continuous_covariate_keys", numeric = TRUE, what = what, call = call
    ),
    preset = .check_preset(preset, call = call),
    n_top_genes = .check_count(n_top_genes, "n_top_genes", call = call),
    n_latent = .check_count(n_latent, "n_latent", call = call),
    max_epochs = .check_count(max_epochs, "max_epochs", null_ok = TRUE, call = call),
    seed = .check_count(seed, "seed", min = 0, call = call),
    accelerator = .check_string(accelerator, "accelerator", call = call),
    devices = .check_devices(devices, call = call)
  )
}

# scANVI and model-saving options, checked before any training starts.
.scanvi_args <- function(labels_key, scanvi, unlabeled_category, scanvi_epochs, save_model,
                         call = parent.frame()) {
  scanvi <- .check_flag(scanvi, "scanvi", call = call)
  if (scanvi && is.null(labels_key)) {
    cli::cli_abort(
      c(
        "{.code scanvi = TRUE} needs {.arg labels_key}: the cell-metadata column with the known cell labels.",
        "i" = "Cells whose label is {.arg unlabeled_category} ({.val {unlabeled_category}}) or NA are predicted."
      ),
      class = "pyscvibridge_error",
      call = call
    )
  }
  .check_string(unlabeled_category, "unlabeled_category", call = call)
  .check_string(save_model, "save_model", null_ok = TRUE, call = call)
  if (!is.null(save_model) && dir.exists(save_model) && length(list.files(save_model, all.files = TRUE, no.. = TRUE))) {
    cli::cli_abort(
      c(
        "{.arg save_model} {.path {save_model}} already exists and is not empty.",
        "i" = "Choose a new directory, or delete that one first."
      ),
      class = "pyscvibridge_error",
      call = call
    )
  }
  list(
    scanvi = scanvi,
    unlabeled_category = unlabeled_category,
    scanvi_epochs = .check_count(scanvi_epochs, "scanvi_epochs", null_ok = TRUE, call = call),
    save_model = if (is.null(save_model)) NULL else normalizePath(save_model, mustWork = FALSE)
  )
}

# Genes for corrected expression: a character vector of the object's features; transform_batch:
# NULL, "all", or levels of the batch column (not checked when the batch comes from a split).
.expression_args <- function(corrected_genes, transform_batch, features, batches, call = parent.frame()) {
  if (is.null(corrected_genes)) {
    if (!is.null(transform_batch)) {
      cli::cli_abort(
        "{.arg transform_batch} applies to corrected expression; give the genes in {.arg corrected_genes}.",
        class = "pyscvibridge_error", call = call
      )
    }
    return(list())
  }
  if (!is.character(corrected_genes) || !length(corrected_genes) || anyNA(corrected_genes)) {
    cli::cli_abort("{.arg corrected_genes} must be a character vector of gene names.", class = "pyscvibridge_error", call = call)
  }
  unknown <- setdiff(corrected_genes, features)
  if (length(unknown)) {
    cli::cli_abort(
      c(
        "{.arg corrected_genes}: {length(unknown)} gene{?s} {?is/are} not in the object: {.val {utils::head(unknown, 5)}}.",
        "i" = "Use names as in {.code rownames()} of the object, e.g. {.val {utils::head(features, 3)}}."
      ),
      class = "pyscvibridge_error",
      call = call
    )
  }
  if (!is.null(transform_batch)) {
    if (!is.character(transform_batch) || !length(transform_batch) || anyNA(transform_batch)) {
      cli::cli_abort("{.arg transform_batch} must be {.val all} or batch names.", class = "pyscvibridge_error", call = call)
    }
    if (!is.null(batches) && !identical(transform_batch, "all")) {
      unknown <- setdiff(transform_batch, batches)
      if (length(unknown)) {
        cli::cli_abort(
          c(
            "{.arg transform_batch} {.val {unknown}} {?is/are} not a batch.",
            "i" = "Batches: {.val {batches}}; or {.val all} to average over all of them."
          ),
          class = "pyscvibridge_error",
          call = call
        )
      }
    }
  }
  list(corrected_genes = as.list(unique(corrected_genes)), transform_batch = if (is.null(transform_batch)) NULL else as.list(transform_batch))
}

`%||%` <- function(x, y) if (is.null(x)) y else x
