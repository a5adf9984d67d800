# Checks of the R arguments' types, made before anything crosses to Python (which wants plain
# strings, whole numbers as integers, and lists). Whether a column, layer, gene or batch exists,
# and how options combine, is checked once, in Python (pyscvibridge._pipeline.check), which names
# the argument to blame. Each error names the argument and the fix.

.check_string <- function(x, arg, null_ok = FALSE, call = parent.frame()) {
  if (is.null(x) && null_ok) {
    return(invisible(x))
  }
  if (!is.character(x) || length(x) != 1L || is.na(x) || !nzchar(x)) {
    cli::cli_abort(
      "{.arg {arg}} must be a single non-empty string, not {.cls {class(x)}} of length {length(x)}.",
      class = "pyscvibridge_error", call = call
    )
  }
  invisible(x)
}

.check_count <- function(x, arg, min = 1, null_ok = FALSE, call = parent.frame()) {
  if (is.null(x) && null_ok) {
    return(NULL)
  }
  if (!is.numeric(x) || length(x) != 1L || is.na(x) || x != round(x) || x < min) {
    cli::cli_abort(
      "{.arg {arg}} must be a whole number of at least {min}, not {.val {x}}.",
      class = "pyscvibridge_error", call = call
    )
  }
  as.integer(x)
}

# A whole number of any size (its range is checked in Python), as an integer.
.check_whole <- function(x, arg, null_ok = FALSE, call = parent.frame()) {
  if (is.null(x) && null_ok) {
    return(NULL)
  }
  if (!is.numeric(x) || length(x) != 1L || is.na(x) || !is.finite(x) || x != round(x) || abs(x) > .Machine$integer.max) {
    cli::cli_abort(
      "{.arg {arg}} must be a whole number, not {.val {x}}.",
      class = "pyscvibridge_error", call = call
    )
  }
  as.integer(x)
}

.check_number <- function(x, arg, null_ok = FALSE, call = parent.frame()) {
  if (is.null(x) && null_ok) {
    return(NULL)
  }
  if (!is.numeric(x) || length(x) != 1L || is.na(x)) {
    cli::cli_abort("{.arg {arg}} must be a number, not {.val {x}}.", class = "pyscvibridge_error", call = call)
  }
  as.numeric(x)
}

# NULL, or a list whose elements all have names (keyword arguments for Python).
.check_kwargs <- function(x, arg, call = parent.frame()) {
  if (is.null(x)) {
    return(NULL)
  }
  if (!is.list(x) || is.data.frame(x) || (length(x) && (is.null(names(x)) || any(!nzchar(names(x)))))) {
    cli::cli_abort(
      c(
        "{.arg {arg}} must be a named list of arguments, not {.cls {class(x)}}.",
        "i" = "For example {.code {arg} = list(n_layers = 2)}."
      ),
      class = "pyscvibridge_error", call = call
    )
  }
  x
}

# scVI's model options (named arguments, NULL = scvi-tools' default) merged into `model_kwargs`,
# and `train_kwargs`, for Python (see pyscvibridge._pipeline.Spec). `named` holds options a caller
# has already typed (scVIIntegration()'s nlayers, gene_likelihood).
.model_args <- function(named = list(), n_hidden = NULL, dispersion = NULL, dropout_rate = NULL,
                        model_kwargs = NULL, train_kwargs = NULL, n_layers = NULL,
                        gene_likelihood = NULL, call = parent.frame()) {
  named <- c(named, list(
    n_layers = .check_whole(n_layers, "n_layers", null_ok = TRUE, call = call),
    n_hidden = .check_whole(n_hidden, "n_hidden", null_ok = TRUE, call = call),
    gene_likelihood = .check_string(gene_likelihood, "gene_likelihood", null_ok = TRUE, call = call),
    dispersion = .check_string(dispersion, "dispersion", null_ok = TRUE, call = call),
    dropout_rate = .check_number(dropout_rate, "dropout_rate", null_ok = TRUE, call = call)
  ))
  named <- named[!vapply(named, is.null, logical(1))]
  named <- named[!duplicated(names(named))]
  if (!is.null(named$gene_likelihood)) .check_string(named$gene_likelihood, "gene_likelihood", call = call)
  model_kwargs <- .check_kwargs(model_kwargs, "model_kwargs", call = call)
  both <- intersect(names(named), names(model_kwargs))
  if (length(both)) {
    cli::cli_abort(
      "{.val {both}} {?is/are} given both as {?an argument/arguments} and in {.arg model_kwargs}; give {?it/them} once.",
      class = "pyscvibridge_error", call = call
    )
  }
  model_kwargs <- c(named, model_kwargs)
  train_kwargs <- .check_kwargs(train_kwargs, "train_kwargs", call = call)
  list(
    model_kwargs = if (length(model_kwargs)) model_kwargs,
    train_kwargs = if (length(train_kwargs)) train_kwargs
  )
}

.check_flag <- function(x, arg, call = parent.frame()) {
  if (!is.logical(x) || length(x) != 1L || is.na(x)) {
    cli::cli_abort(
      "{.arg {arg}} must be {.code TRUE} or {.code FALSE}, not {.val {x}}.",
      class = "pyscvibridge_error", call = call
    )
  }
  x
}

# A character vector (NULL allowed), returned as a list so that one name still reaches Python as
# a list.
.check_strings <- function(x, arg, call = parent.frame()) {
  if (is.null(x)) {
    return(NULL)
  }
  if (!is.character(x) || !length(x) || anyNA(x)) {
    cli::cli_abort(
      "{.arg {arg}} must be a character vector of names, not {.cls {class(x)}}.",
      class = "pyscvibridge_error", call = call
    )
  }
  as.list(x)
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
  cli::cli_abort(
    "{.arg devices} must be {.val auto}, a number of devices or device ids, not {.val {x}}.",
    class = "pyscvibridge_error", call = call
  )
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
      class = "pyscvibridge_error",
      call = call
    )
  }
  invisible()
}

# The options RunScVI() sends to Python, typed (see pyscvibridge._pipeline.Spec).
.integrate_args <- function(batch_key, labels_key, categorical_covariate_keys, continuous_covariate_keys,
                            preset, n_top_genes, n_latent, max_epochs, seed, accelerator, devices,
                            scanvi, unlabeled_category, scanvi_epochs, save_model, corrected_genes,
                            transform_batch, call = parent.frame()) {
  .check_string(save_model, "save_model", null_ok = TRUE, call = call)
  list(
    batch_key = .check_string(batch_key, "batch_key", null_ok = TRUE, call = call),
    labels_key = .check_string(labels_key, "labels_key", null_ok = TRUE, call = call),
    categorical_covariate_keys = .check_strings(categorical_covariate_keys, "categorical_covariate_keys", call = call),
    continuous_covariate_keys = .check_strings(continuous_covariate_keys, "continuous_covariate_keys", call = call),
    preset = .check_string(preset, "preset", null_ok = TRUE, call = call),
    n_top_genes = .check_count(n_top_genes, "n_top_genes", call = call),
    n_latent = .check_count(n_latent, "n_latent", call = call),
    max_epochs = .check_count(max_epochs, "max_epochs", null_ok = TRUE, call = call),
    seed = .check_count(seed, "seed", min = 0, call = call),
    accelerator = .check_string(accelerator, "accelerator", call = call),
    devices = .check_devices(devices, call = call),
    scanvi = .check_flag(scanvi, "scanvi", call = call),
    unlabeled_category = .check_string(unlabeled_category, "unlabeled_category", call = call),
    scanvi_epochs = .check_count(scanvi_epochs, "scanvi_epochs", null_ok = TRUE, call = call),
    save_model = if (is.null(save_model)) NULL else normalizePath(save_model, mustWork = FALSE),
    corrected_genes = .check_strings(corrected_genes, "corrected_genes", call = call),
    transform_batch = .check_strings(transform_batch, "transform_batch", call = call)
  )
}
