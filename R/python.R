# Finding the Python that has pyscvibridge, starting it in this R session (reticulate), and the
# door module (pyscvibridge._r_door) that R calls. Only names and plain values cross reticulate.

# Package-private state: the Python found (and checked) for this session, and the door module.
.state <- new.env(parent = emptyenv())

# Python modules RunScVI() needs besides pyscvibridge itself.
.python_modules <- c("scvi", "scanpy", "anndata", "rpy2", "anndata2ri")

#' The Python used by pyscvibridge
#'
#' `scvi_python()` returns the Python interpreter that [RunScVI()] uses, after checking that it can
#' import the `pyscvibridge` Python package of the same version as this R package and what it needs
#' (scvi-tools, scanpy, rpy2, anndata2ri). `scvi_available()` says whether such a Python can be
#' found, without an error. [install_pyscvibridge()] makes one.
#'
#' The interpreter is looked up in this order; the first that is set (option, variable) or exists
#' (virtual environments) is used:
#' 1. the R option `pyscvibridge.python`, e.g. `options(pyscvibridge.python = "~/venv/bin/python")`;
#' 2. the environment variable `PYSCVIBRIDGE_PYTHON` (the repository's Makefile sets it);
#' 3. the virtual environment this R package was installed into by the repository's set-up
#'    (`make setup` installs it into `.venv/Rlib`, so `.venv/bin/python` is used);
#' 4. `.venv/bin/python` in the working directory;
#' 5. the virtual environment `pyscvibridge` under reticulate's root (`$WORKON_HOME`, by default
#'    `~/.virtualenvs`), where [install_pyscvibridge()] installs by default.
#'
#' An option or variable that points to a missing or broken Python is an error, not skipped.
#' The Python package's version must be the R package's; otherwise the message says how to update
#' it (set `options(pyscvibridge.check_version = FALSE)` to use another version at your own risk).
#' Python is started once per R session, so restart R to switch to another interpreter.
#'
#' @return `scvi_python()`: the path of the Python interpreter (a string), or an error saying how
#'   to set one up. `scvi_available()`: `TRUE` or `FALSE`.
#' @seealso [install_pyscvibridge()] to make the Python environment.
#' @export
#' @examples
#' if (scvi_available()) scvi_python()
scvi_python <- function() {
  if (is.null(.state$python)) {
    .state$python <- .find_python()
  }
  .state$python
}

#' @rdname scvi_python
#' @export
scvi_available <- function() {
  tryCatch(
    {
      scvi_python()
      TRUE
    },
    error = function(e) FALSE
  )
}

# reticulate's root of virtual environments ($WORKON_HOME, else ~/.virtualenvs).
.virtualenv_root <- function() {
  root <- Sys.getenv("WORKON_HOME")
  if (!nzchar(root)) root <- "~/.virtualenvs"
  path.expand(root)
}

# The default environment of install_pyscvibridge().
.default_env <- function() file.path(.virtualenv_root(), "pyscvibridge")

# The interpreter of a virtual environment.
.env_python <- function(env) {
  if (.Platform$OS.type == "windows") file.path(env, "Scripts", "python.exe") else file.path(env, "bin", "python")
}

# Candidate interpreters in lookup order: list(path, source, explicit).
.python_candidates <- function() {
  out <- list()
  add <- function(path, source, explicit) {
    out[[length(out) + 1L]] <<- list(path = path, source = source, explicit = explicit)
  }
  opt <- getOption("pyscvibridge.python")
  if (!is.null(opt) && nzchar(opt[1])) add(opt[1], "option {.code pyscvibridge.python}", TRUE)
  env <- Sys.getenv("PYSCVIBRIDGE_PYTHON")
  if (nzchar(env)) add(env, "environment variable {.envvar PYSCVIBRIDGE_PYTHON}", TRUE)
  # scripts/setup.sh installs the R package into <venv>/Rlib: <venv>/bin/python is next to it.
  lib <- dirname(system.file(package = "pyscvibridge"))
  add(file.path(dirname(lib), "bin", "python"), "the set-up's virtual environment", FALSE)
  add(file.path(getwd(), ".venv", "bin", "python"), "{.file .venv} in the working directory", FALSE)
  add(.env_python(.default_env()), "install_pyscvibridge()'s virtual environment", FALSE)
  out
}

.find_python <- function(candidates = .python_candidates()) {
  tried <- character()
  for (cand in candidates) {
    path <- path.expand(cand$path)
    if (!file.exists(path)) {
      if (cand$explicit) .abort_no_python(cand, "does not exist")
      tried <- c(tried, path)
      next
    }
    probe <- .probe_python(path)
    if (is.null(probe$problem)) {
      .check_version(path, probe$package)
      return(.abs_path(path))
    }
    if (cand$explicit) .abort_no_python(cand, probe$problem)
    tried <- c(tried, paste0(path, " (", probe$problem, ")"))
  }
  default_env <- .default_env()
  cli::cli_abort(
    c(
      "No Python with the {.pkg pyscvibridge} Python package was found.",
      "i" = "Run {.run pyscvibridge::install_pyscvibridge()} once: it makes a Python environment with scvi-tools and pyscvibridge (in {.file {default_env}}).",
      "i" = "Or point to an interpreter that has it: {.code options(pyscvibridge.python = \"/path/to/bin/python\")} or the environment variable {.envvar PYSCVIBRIDGE_PYTHON}.",
      "i" = "Looked at: {.file {unique(tried)}}."
    ),
    class = c("pyscvibridge_no_python", "pyscvibridge_error"),
    call = NULL
  )
}

.abort_no_python <- function(cand, problem) {
  path <- cand$path
  cli::cli_abort(
    c(
      paste0("The Python set by the ", cand$source, " cannot be used: {.file {path}} {problem}."),
      "i" = "Set it to an interpreter with the pyscvibridge Python package (e.g. one made by {.run pyscvibridge::install_pyscvibridge()}), or unset it to look for the default environments."
    ),
    class = c("pyscvibridge_no_python", "pyscvibridge_error"),
    call = NULL
  )
}

# This R package's version, e.g. "0.1.0".
.r_version <- function() unname(getNamespaceVersion("pyscvibridge"))

# The version of the Python package must be the R package's: the door's arguments and results
# change together. One message with the fix.
.check_version <- function(python, py_version, r_version = .r_version()) {
  if (identical(py_version, r_version) || isFALSE(getOption("pyscvibridge.check_version"))) {
    return(invisible(TRUE))
  }
  env <- dirname(dirname(python))
  how <- if (identical(normalizePath(env, mustWork = FALSE), normalizePath(.default_env(), mustWork = FALSE))) {
    "{.run pyscvibridge::install_pyscvibridge()}"
  } else {
    paste0("{.code pyscvibridge::install_pyscvibridge(\"", env, "\")}")
  }
  cli::cli_abort(
    c(
      "The pyscvibridge Python package in {.file {python}} is version {py_version}, but this R package is version {r_version}; they must match.",
      "i" = paste0("Update the Python side with ", how, " (it installs the Python package that comes with this R package), then restart R.")
    ),
    class = c("pyscvibridge_version_mismatch", "pyscvibridge_no_python", "pyscvibridge_error"),
    call = NULL
  )
}

# What `python` is: list(python = its version, package = pyscvibridge's version or NULL, problem =
# NULL when it can run pyscvibridge, else a short reason). Runs a separate, quick Python process
# that imports nothing heavy, so a broken interpreter cannot take this R session down.
.probe_python <- function(python) {
  code <- paste(
    "import sys, importlib.util as u",
    "from importlib.metadata import version",
    "print('python=%d.%d.%d' % sys.version_info[:3])",
    "ok = sys.version_info >= (3, 10) and u.find_spec('pyscvibridge') is not None",
    "try: v = version('pyscvibridge') if ok else ''",
    "except Exception: v = '0.0.0+unknown'",
    "print('pyscvibridge=' + v)",
    paste0("print('missing=' + ','.join(n for n in ", .py_list(.python_modules), " if ok and u.find_spec(n) is None))"),
    sep = "\n"
  )
  out <- suppressWarnings(tryCatch(
    .py_system2(python, c("-c", shQuote(code)), stdout = TRUE, stderr = TRUE),
    error = function(e) conditionMessage(e)
  ))
  field <- function(key) {
    hit <- grep(paste0("^", key, "="), out, value = TRUE)
    if (length(hit)) sub(paste0("^", key, "="), "", hit[1]) else NULL
  }
  res <- list(python = field("python"), package = field("pyscvibridge"), problem = NULL)
  status <- attr(out, "status")
  if (!is.null(status) || is.null(res$python)) {
    last <- if (length(out)) out[length(out)] else ""
    res$problem <- paste0("does not run (", if (nzchar(last)) last else paste("exit status", status), ")")
  } else if (numeric_version(res$python) < "3.10") {
    res$problem <- paste0("is Python ", res$python, "; pyscvibridge needs Python 3.10 or newer")
  } else if (!nzchar(res$package)) {
    res$problem <- "cannot import pyscvibridge"
  } else if (nzchar(missing <- field("missing"))) {
    res$problem <- paste0("lacks the Python modules ", gsub(",", ", ", missing))
  }
  res
}

# system2() for a Python interpreter, with its own shared libpython first on LD_LIBRARY_PATH: R puts
# the system's library directories there, and a Python built with a shared libpython elsewhere
# (pyenv, conda) would start with the system's libpython and its own standard library (a mismatch
# that breaks e.g. its ssl module). See pyscvibridge/_libpython.py.
.py_system2 <- function(python, args, ...) {
  path <- Sys.getenv("LD_LIBRARY_PATH")
  libdir <- file.path(dirname(dirname(normalizePath(python, mustWork = FALSE))), "lib")
  if (nzchar(path) && length(Sys.glob(file.path(libdir, "libpython3*.so*")))) {
    return(system2(python, args, env = paste0("LD_LIBRARY_PATH=", shQuote(paste(libdir, path, sep = ":"))), ...))
  }
  system2(python, args, ...)
}

# An absolute path that keeps symbolic links: a virtual environment's bin/python is a link to the
# base interpreter, and resolving it would lose the environment's packages.
.abs_path <- function(path) {
  path <- path.expand(path)
  if (!startsWith(path, "/") && !grepl("^[A-Za-z]:", path)) path <- file.path(getwd(), path)
  path
}

.py_list <- function(x) paste0("[", paste0("'", x, "'", collapse = ", "), "]")

# The door module, importing it (and starting Python) on first use.
.door <- function() {
  if (!is.null(.state$door)) {
    return(.state$door)
  }
  python <- scvi_python()
  if (reticulate::py_available(initialize = FALSE)) {
    running <- reticulate::py_config()$python
    if (!identical(.abs_path(running), python)) {
      cli::cli_abort(
        c(
          "Python is already running in this R session ({.file {running}}), not the one pyscvibridge found ({.file {python}}).",
          "i" = "Restart R and call {.fn RunScVI} before anything else starts Python, or set {.code options(pyscvibridge.python = \"{running}\")} if that interpreter has pyscvibridge."
        ),
        class = c("pyscvibridge_no_python", "pyscvibridge_error"),
        call = NULL
      )
    }
  } else {
    # reticulate gives RETICULATE_PYTHON precedence over use_python(): point it at ours while
    # Python starts, then restore the user's setting.
    old <- Sys.getenv("RETICULATE_PYTHON", unset = NA)
    Sys.setenv(RETICULATE_PYTHON = python)
    on.exit(if (is.na(old)) Sys.unsetenv("RETICULATE_PYTHON") else Sys.setenv(RETICULATE_PYTHON = old))
    reticulate::use_python(python, required = TRUE)
  }
  door <- tryCatch(
    reticulate::import("pyscvibridge._r_door", convert = FALSE),
    error = function(e) {
      cli::cli_abort(
        c(
          "Python ({.file {python}}) started but cannot import {.code pyscvibridge._r_door}.",
          "x" = conditionMessage(e),
          "i" = "Reinstall the Python package: {.run pyscvibridge::install_pyscvibridge(force = TRUE)}."
        ),
        class = c("pyscvibridge_no_python", "pyscvibridge_error"),
        call = NULL
      )
    }
  )
  .state$door <- door
  door
}
