# Calling the Python door with an R object. The object goes into a hand-off environment kept in
# the package's private state (`.state$bridges`, never the user's global environment) under a
# unique name; Python (rpy2) finds it there by that name, reads the object and binds its result
# next to it. reticulate carries only that name and plain values (strings, numbers, logicals).

.call_door <- function(fun, object, args, verbose = TRUE, arguments = character(), call = NULL) {
  seed <- .saved_seed()
  on.exit(.restore_seed(seed), add = TRUE)
  door <- .door()
  .conventions() # asked here, once, while R's random-number state is guarded
  name <- .bridge_open(object)
  on.exit(.bridge_close(name), add = TRUE)
  bridge <- .state$bridges[[name]]

  emit <- if (isTRUE(verbose)) function(text) message(text) else NULL
  # Every Python value is made here, before the call, and stays referenced during it; then R's
  # garbage collector runs. The reason: while rpy2 evaluates R code for Python, the GIL is
  # released, and reticulate 1.28 finalises unreachable Python objects without taking it back,
  # which aborts the process. Collecting them now leaves none to finalise during the call.
  # Measured 2026-12-02 (reticulate 1.28, rpy2 3.5.17): without this gc(), testthat's
  # test-corrected-expression.R aborted R with "Fatal Python error: PyThreadState_Get: the function
  # must be called with the GIL held, but the GIL is released" in the door's first R call
  # (test-verbose.R, test-seurat.R, test-scanvi.R and test-map-query.R happened to pass). It stays.
  fn <- door[[fun]]
  py_args <- lapply(c(list(name), args, list(verbose = isTRUE(verbose), emit = emit)), reticulate::r_to_py)
  invisible(gc(verbose = FALSE))
  answer <- tryCatch(
    do.call(fn, py_args),
    error = function(e) .abort_python_crash(e, call)
  )
  answer <- reticulate::py_to_r(answer)
  for (w in answer$warnings) cli::cli_warn(c("!" = "{w}"), class = "pyscvibridge_python_warning")
  if (!isTRUE(answer$ok)) {
    .abort_python_error(answer, arguments, call)
  }
  list(result = bridge$result, info = answer$info)
}

# A new hand-off environment holding `object`, kept in `.state$bridges`; returns its name.
.bridge_open <- function(object = NULL) {
  if (is.null(.state$bridges)) .state$bridges <- new.env(parent = emptyenv())
  .state$n_calls <- (if (is.null(.state$n_calls)) 0L else .state$n_calls) + 1L
  name <- paste0("bridge_", .state$n_calls)
  bridge <- new.env(parent = emptyenv())
  if (!is.null(object)) bridge$object <- object
  assign(name, bridge, envir = .state$bridges)
  name
}

.bridge_close <- function(name) {
  if (!is.null(.state$bridges) && exists(name, envir = .state$bridges, inherits = FALSE)) {
    rm(list = name, envir = .state$bridges)
  }
  invisible()
}

# R's random-number state as the user left it: reticulate 1.28 draws from R's generator when it
# starts Python and when it calls it, which creates or advances `.Random.seed` in the global
# environment. RunScVI() itself uses no R random numbers (its seed goes to Python), so the state is
# put back as it was. (reticulate's own task callback, run after each top-level call once Python
# is running, still does this; that is reticulate's, not this package's.)
.saved_seed <- function() {
  if (exists(".Random.seed", envir = globalenv(), inherits = FALSE)) {
    list(get(".Random.seed", envir = globalenv(), inherits = FALSE))
  } else {
    list()
  }
}

.restore_seed <- function(saved) {
  if (length(saved)) {
    assign(".Random.seed", saved[[1]], envir = globalenv())
  } else if (exists(".Random.seed", envir = globalenv(), inherits = FALSE)) {
    rm(list = ".Random.seed", envir = globalenv())
  }
  invisible()
}

# The names Python uses for reductions, records, presets and defaults, asked once per session.
.conventions <- function() {
  if (is.null(.state$conventions)) {
    .state$conventions <- reticulate::py_to_r(.door()$conventions())
  }
  .state$conventions
}

# A PyscvibridgeError (bad input) raised in Python, reported as a cli error naming the R argument.
.abort_python_error <- function(answer, arguments, call) {
  msg <- answer$error
  arg <- answer$argument
  if (!is.null(arg) && arg %in% names(arguments)) arg <- arguments[[arg]]
  header <- if (!is.null(arg) && nzchar(arg)) "Problem with {.arg {arg}}." else "scVI integration failed."
  # A message that starts with the argument's name shows it as code, as R's own checks do.
  if (!is.null(arg) && nzchar(arg) && (startsWith(msg, paste0(arg, " ")) || startsWith(msg, paste0(arg, ":")))) {
    msg <- paste0("`", arg, "`", substring(msg, nchar(arg) + 1L))
  }
  cli::cli_abort(c(header, "x" = "{msg}"), class = c("pyscvibridge_error", "pyscvibridge_python_error"), call = call)
}

# Anything else that went wrong in Python (a bug, an out-of-memory, an interrupted training).
.abort_python_crash <- function(e, call) {
  lines <- strsplit(conditionMessage(e), "\n", fixed = TRUE)[[1]]
  lines <- lines[nzchar(trimws(lines))]
  first <- if (length(lines)) lines[[1]] else "unknown error"
  cli::cli_abort(
    c(
      "Python failed while running scVI.",
      "x" = "{first}",
      "i" = "Run {.run reticulate::py_last_error()} for the Python traceback."
    ),
    class = c("pyscvibridge_error", "pyscvibridge_python_crash"),
    parent = e,
    call = call
  )
}
