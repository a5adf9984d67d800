# install_pyscvibridge(): a Python virtual environment with torch, scvi-tools and the pyscvibridge
# Python package of this R package's version (the wheel bundled in inst/python/).

#' Set up the Python environment pyscvibridge uses
#'
#' Makes a Python virtual environment with PyTorch, scvi-tools and the `pyscvibridge` Python
#' package of the same version as this R package (with its R extras: rpy2, anndata2ri), where
#' [scvi_python()] finds it. Call it once after installing the R package; it takes a few minutes
#' (PyTorch alone is several hundred MB) and shows pip's progress.
#'
#' It is idempotent: when the environment already holds the right versions, it says so and
#' returns. An environment with an older pyscvibridge is updated in place. The Python package
#' comes from the wheel bundled in this R package (`inst/python/`), so no package index is needed
#' for it; its dependencies come from PyPI (or your pip configuration).
#'
#' @param envname The virtual environment: a name (made under reticulate's root, `$WORKON_HOME` or
#'   `~/.virtualenvs`) or a path (anything with a `/`). The default, `"pyscvibridge"`, is where
#'   [scvi_python()] looks without further settings; for another one, set
#'   `options(pyscvibridge.python = ...)` to the interpreter this function returns.
#' @param python The Python (3.10 or newer) to make the environment from. `NULL` looks for
#'   `python3.13` ... `python3.10`, `python3` and `python` on the `PATH`.
#' @param gpu `FALSE` (default) installs the CPU build of PyTorch (from PyTorch's CPU package index
#'   on Linux; PyPI's build elsewhere). `TRUE` installs PyPI's default build, which on Linux is the
#'   CUDA one. For a particular CUDA version pass its index as `torch_index`.
#' @param torch The PyTorch requirement, e.g. `"torch==2.5.1"`. It is installed first, before
#'   scvi-tools (which would otherwise pull PyPI's CUDA build). Skipped when the environment can
#'   already import torch.
#' @param torch_index An extra package index for PyTorch (pip's `--extra-index-url`), e.g.
#'   `"https://download.pytorch.org/whl/cu121"`; `NULL` for none.
#' @param package What to install as the pyscvibridge Python package: `NULL` (the wheel bundled
#'   in this R package), a path to a wheel or source tree, or a requirement such as
#'   `"pyscvibridge==0.1.0"` from a package index.
#' @param extra_packages More Python requirements to install in the same step (e.g.
#'   `"scib-metrics"`).
#' @param pip_options More arguments for every `pip install`, e.g.
#'   `c("--index-url", "https://mirror.example.org/simple")`.
#' @param force Reinstall the pyscvibridge Python package even when the right version is there.
#' @param quiet `TRUE` hides pip's output unless a step fails.
#'
#' @return The path of the environment's Python interpreter, invisibly.
#' @seealso [scvi_python()] for how the interpreter is found.
#' @export
#' @examples
#' \dontrun{
#' install_pyscvibridge() # once; then restart R
#' install_pyscvibridge(gpu = TRUE) # CUDA build of PyTorch (Linux)
#' install_pyscvibridge("~/envs/scvi", python = "/usr/bin/python3.11")
#' options(pyscvibridge.python = "~/envs/scvi/bin/python")
#' }
install_pyscvibridge <- function(envname = "pyscvibridge",
                                 python = NULL,
                                 gpu = FALSE,
                                 torch = "torch",
                                 torch_index = if (gpu) NULL else .torch_cpu_index(),
                                 package = NULL,
                                 extra_packages = NULL,
                                 pip_options = NULL,
                                 force = FALSE,
                                 quiet = FALSE) {
  env <- .env_path(envname)
  env_python <- .env_python(env)
  r_version <- .r_version()

  if (file.exists(env_python)) {
    probe <- .probe_python(env_python)
    if (!force && is.null(probe$problem) && identical(probe$package, r_version) &&
      is.null(extra_packages)) {
      cli::cli_inform(c("v" = "pyscvibridge {r_version} is already installed in {.file {env}}."))
      .state$python <- NULL
      return(invisible(env_python))
    }
    if (!is.null(probe$python) && numeric_version(probe$python) < "3.10") {
      .abort_install(c(
        "The environment {.file {env}} has Python {probe$python}; pyscvibridge needs Python 3.10 or newer.",
        "i" = "Remove it, or pass another {.arg envname}, and call {.fn install_pyscvibridge} again."
      ))
    }
  } else {
    base <- .base_python(python)
    cli::cli_inform(c("i" = "Making the virtual environment {.file {env}} with {.file {base$path}} (Python {base$version})."))
    dir.create(dirname(env), recursive = TRUE, showWarnings = FALSE)
    .run_step(base$path, c("-m", "venv", env), "making the virtual environment", quiet,
      hint = "On Debian or Ubuntu the venv module is in the package {.pkg python3-venv}."
    )
  }

  if (!.python_can_import(env_python, "torch")) {
    what <- if (is.null(torch_index)) "PyTorch" else paste0("PyTorch (", if (gpu) "" else "CPU build, ", "from ", torch_index, ")")
    cli::cli_inform(c("i" = "Installing {what}."))
    index <- if (!is.null(torch_index)) c("--extra-index-url", torch_index)
    .pip(env_python, c(torch, index), pip_options, "PyTorch", quiet)
  }

  pkg <- if (is.null(package)) .bundled_wheel() else package
  reqs <- c(paste0(pkg, "[r]"), .rpy2_requirement(), extra_packages)
  cli::cli_inform(c("i" = "Installing the pyscvibridge Python package {r_version} and scvi-tools."))
  if (force) {
    .pip(env_python, c("--force-reinstall", "--no-deps", pkg), pip_options, "pyscvibridge", quiet)
  }
  .pip(env_python, reqs, pip_options, "pyscvibridge and its dependencies", quiet)

  probe <- .probe_python(env_python)
  if (!is.null(probe$problem)) {
    cmd <- paste(.shell_quote(c(env_python, "-m", "pip", "install", reqs)), collapse = " ")
    .abort_install(c(
      "The environment {.file {env}} was made, but its Python {probe$problem}.",
      "i" = "Run {.code {cmd}} to see what is missing."
    ))
  }
  .check_version(env_python, probe$package, r_version)
  .state$python <- NULL
  msg <- c("v" = "pyscvibridge {r_version} is ready in {.file {env}}.")
  if (!identical(normalizePath(env, mustWork = FALSE), normalizePath(.default_env(), mustWork = FALSE))) {
    msg <- c(msg, "i" = "Use it with {.code options(pyscvibridge.python = \"{env_python}\")}.")
  }
  if (reticulate::py_available(initialize = FALSE)) {
    msg <- c(msg, "i" = "Python is already running in this R session: restart R to use it.")
  }
  cli::cli_inform(msg)
  invisible(env_python)
}

# PyTorch's index of CPU builds on Linux (PyPI's torch for Linux is the CUDA build); elsewhere
# PyPI's build is the CPU one.
.torch_cpu_index <- function() {
  if (identical(Sys.info()[["sysname"]], "Linux")) "https://download.pytorch.org/whl/cpu"
}

# rpy2 3.6 needs R >= 4.5 (it uses R_getVar); older R needs rpy2 3.5.
.rpy2_requirement <- function(r_version = getRversion()) {
  if (r_version < "4.5") "rpy2>=3.5.13,<3.6"
}

.env_path <- function(envname) {
  if (!is.character(envname) || length(envname) != 1L || !nzchar(envname)) {
    cli::cli_abort("{.arg envname} must be a name or a path (one string).", class = "pyscvibridge_error", call = NULL)
  }
  if (grepl("[/\\\\]", envname) || startsWith(envname, "~") || startsWith(envname, ".")) {
    return(.abs_path(envname))
  }
  file.path(.virtualenv_root(), envname)
}

# The Python to make the environment from: the one given, else the first Python >= 3.10 on PATH.
.base_python <- function(python) {
  if (!is.null(python)) {
    path <- path.expand(python)
    version <- .python_version(path)
    if (is.null(version)) {
      .abort_install(
        c(
          "{.arg python} ({.file {python}}) does not run as a Python interpreter.",
          "i" = "Pass the path of a Python 3.10 or newer, or leave {.arg python} out to look for one."
        ),
        class = "pyscvibridge_no_python"
      )
    }
    if (numeric_version(version) < "3.10") {
      .abort_install(
        c(
          "{.arg python} ({.file {python}}) is Python {version}; pyscvibridge needs Python 3.10 or newer.",
          "i" = "Install a newer Python (from your system's packages, {.url https://www.python.org}, or {.code reticulate::install_python()}) and pass its path."
        ),
        class = "pyscvibridge_no_python"
      )
    }
    return(list(path = attr(version, "executable"), version = as.character(version)))
  }
  names <- c("python3", "python", paste0("python3.", 13:10))
  found <- Sys.which(names)
  seen <- character()
  for (path in unique(found[nzchar(found)])) {
    version <- .python_version(path)
    if (!is.null(version)) seen <- c(seen, paste0(path, " (", version, ")"))
    if (!is.null(version) && numeric_version(version) >= "3.10") {
      return(list(path = attr(version, "executable"), version = as.character(version)))
    }
  }
  .abort_install(
    c(
      "No Python 3.10 or newer was found to make the environment from.",
      "i" = if (length(seen)) "Found only: {.file {seen}}." else "There is no {.code python3} on the {.envvar PATH}.",
      "i" = "Install Python 3.10 or newer (e.g. {.code sudo apt install python3 python3-venv}, {.code brew install python}, or {.code reticulate::install_python()}), then call {.code install_pyscvibridge(python = \"/path/to/python3\")}."
    ),
    class = "pyscvibridge_no_python"
  )
}

# "3.11.7", or NULL when `python` does not run.
.python_version <- function(python) {
  out <- suppressWarnings(tryCatch(
    .py_system2(python, c("-c", shQuote("import sys; print('%d.%d.%d' % sys.version_info[:3]); print(sys.executable)")),
      stdout = TRUE, stderr = TRUE
    ),
    error = function(e) NULL
  ))
  if (is.null(out) || !is.null(attr(out, "status"))) {
    return(NULL)
  }
  at <- grep("^[0-9]+\\.[0-9]+\\.[0-9]+$", out)
  if (!length(at)) {
    return(NULL)
  }
  # the real interpreter behind a launcher or shim (pyenv's), where one is named
  executable <- if (length(out) > at[1] && file.exists(out[at[1] + 1L])) out[at[1] + 1L] else python
  if (!identical(normalizePath(executable), normalizePath(python))) {
    return(.python_version(executable)) # started through a shim: ask the interpreter itself
  }
  structure(out[at[1]], executable = executable)
}

.python_can_import <- function(python, module) {
  code <- paste0("import importlib.util as u, sys; sys.exit(u.find_spec('", module, "') is None)")
  status <- suppressWarnings(.py_system2(python, c("-c", shQuote(code)), stdout = FALSE, stderr = FALSE))
  identical(as.integer(status), 0L)
}

# The wheel that came with this R package (scripts/build_r_package.sh puts it in inst/python/).
.bundled_wheel <- function() {
  version <- .r_version()
  dir <- system.file("python", package = "pyscvibridge")
  wheel <- if (nzchar(dir)) file.path(dir, paste0("pyscvibridge-", version, "-py3-none-any.whl")) else ""
  if (!nzchar(wheel) || !file.exists(wheel)) {
    .abort_install(c(
      "This installation of the R package carries no Python wheel (version {version}).",
      "i" = "The tarball made by {.code bash scripts/build_r_package.sh} carries one; an R package installed straight from a source tree does not.",
      "i" = "Pass {.arg package}: a wheel, the repository's folder, or {.code \"pyscvibridge=={version}\"}."
    ))
  }
  wheel
}

.pip <- function(python, args, pip_options, what, quiet) {
  .run_step(python, c("-m", "pip", "install", "--disable-pip-version-check", pip_options, args),
    paste("installing", what), quiet,
    hint = "Check the network or the package index, and the message above."
  )
}

# Run a command, showing its output (unless quiet); on failure, one message that says which step
# failed and the command to run by hand.
.run_step <- function(command, args, step, quiet, hint = NULL) {
  shown <- paste(.shell_quote(c(command, args)), collapse = " ")
  out <- suppressWarnings(tryCatch(
    .py_system2(command, shQuote(args), stdout = if (quiet) TRUE else "", stderr = if (quiet) TRUE else ""),
    error = function(e) structure(conditionMessage(e), status = 127L)
  ))
  status <- if (quiet) attr(out, "status") else out
  if (is.null(status) || identical(as.integer(status), 0L)) {
    return(invisible(TRUE))
  }
  # pip's last lines (when captured), passed as values so braces in them are not interpolated
  last <- if (quiet && length(out)) out[max(1L, length(out) - 4L):length(out)] else character()
  .abort_install(c(
    "{.pkg pyscvibridge}'s set-up failed while {step} (exit status {status}).",
    structure(sprintf("{last[%d]}", seq_along(last)), names = rep(" ", length(last))),
    "i" = hint,
    "i" = "To see why, run by hand: {.code {shown}}"
  ))
}

# Quote for a shell only what needs it, so the command shown reads as one would type it.
.shell_quote <- function(x) ifelse(grepl("^[A-Za-z0-9_./:=,+@%-]+$", x), x, shQuote(x))

.abort_install <- function(message, class = NULL, env = parent.frame()) {
  cli::cli_abort(message, class = c(class, "pyscvibridge_install_error", "pyscvibridge_error"), call = NULL, .envir = env)
}
