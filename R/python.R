# Finding the Python that has pyscvibridge, starting it in this R session (reticulate), and the
# door module (pyscvibridge._r_door) that R calls. Only names and plain values cross reticulate.

# Package-private state: the Python found (and checked) for this session, and the door module.
.state <- new.env(parent = emptyenv())

# Python modules RunScVI() needs besides pyscvibridge itself.
.python_modules <- c("scvi", "scanpy", "anndata", "rpy2", "anndata2ri")

#' The Python used by pyscvibridge
#'
#' `scvi_python()` returns the Python interpreter that [RunScVI()] uses, after checking that it can
#' import the `pyscvibridge` Python package and what it needs (scvi-tools, scanpy, rpy2,
#' anndata2ri). `scvi_available()` says whether such a Python can be found, without an error.
#'
#' The interpreter is looked up in this order; the first that is set (option, variable) or exists
#' (virtual environments) is used:
#' 1. the R option `pyscvibridge.python`, e.g. `options(pyscvibridge.python = "~/venv/bin/python")`;
#' 2. the environment variable `PYSCVIBRIDGE_PYTHON` (the repository's Makefile sets it);
#' 3. the virtual environment this R package was installed into by the repository's set-up
#'    (`make setup` installs it into `.venv/Rlib`, so `.venv/bin/python` is used);
#' 4. `.venv/bin/python` in the working directory;
#' 5. reticulate's virtual environment `~/.virtualenvs/pyscvibridge`.
#'
#' An option or variable that points to a missing or broken Python is an error, not skipped.
#' Python is started once per R session, so restart R to switch to another interpreter.
#'
#' @return `scvi_python()`: the path of the Python interpreter (a string), or an error saying how
#'   to set one up. `scvi_available()`: `TRUE` or `FALSE`.
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
  add(path.expand("~/.virtualenvs/pyscvibridge/bin/python"), "{.file ~/.virtualenvs/pyscvibridge}", FALSE)
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
    problem <- .python_problem(path)
    if (is.null(problem)) {
      return(.abs_path(path))
    }
    if (cand$explicit) .abort_no_python(cand, problem)
    tried <- c(tried, paste0(path, " (", problem, ")"))
  }
  cli::cli_abort(
    c(
      "No Python with the {.pkg pyscvibridge} Python package was found.",
      "i" = "In the pyscvibridge repository, run {.code make setup} (it makes {.file .venv}).",
      "i" = "Or point to an interpreter that has it: {.code options(pyscvibridge.python = \"/path/to/bin/python\")} or the environment variable {.envvar PYSCVIBRIDGE_PYTHON}.",
      "i" = "Looked at: {.file {unique(tried)}}."
    ),
    class = "pyscvibridge_no_python",
    call = NULL
  )
}

.abort_no_python <- function(cand, problem) {
  path <- cand$path
  cli::cli_abort(
    c(
      paste0("The Python set by the ", cand$source, " cannot be used: {.file {path}} {problem}."),
      "i" = "Set it to an interpreter with the pyscvibridge Python package (e.g. {.file .venv/bin/python} after {.code make setup} in the repository), or unset it to look for the set-up's virtual environment."
    ),
    class = "pyscvibridge_no_python",
    call = NULL
  )
}

# NULL when `python` can import pyscvibridge and finds the modules it needs, else a short reason.
# Runs a separate, quick Python process (no heavy imports), so a broken interpreter cannot take
# this R session down.
.python_problem <- function(python) {
  code <- paste0(
    "import importlib.util as u, pyscvibridge; ",
    "m = [n for n in ", .py_list(.python_modules), " if u.find_spec(n) is None]; ",
    "print('missing: ' + ', '.join(m) if m else 'ok')"
  )
  out <- suppressWarnings(tryCatch(
    system2(python, c("-c", shQuote(code)), stdout = TRUE, stderr = TRUE),
    error = function(e) conditionMessage(e)
  ))
  status <- attr(out, "status")
  last <- if (length(out)) out[length(out)] else ""
  if (is.null(status) && identical(last, "ok")) {
    return(NULL)
  }
  if (grepl("^missing: ", last)) {
    return(paste0("lacks the Python modules ", sub("^missing: ", "", last)))
  }
  if (any(grepl("No module named 'pyscvibridge'", out, fixed = TRUE))) {
    return("cannot import pyscvibridge")
  }
  paste0("does not run (", if (nzchar(last)) last else paste("exit status", status), ")")
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
        class = "pyscvibridge_no_python",
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
          "i" = "Reinstall the Python package ({.code make setup} in the repository)."
        ),
        class = "pyscvibridge_no_python",
        call = NULL
      )
    }
  )
  .state$door <- door
  door
}
