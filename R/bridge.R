# Calling the Python door with an R object: the object goes into a temporary environment bound in
# the global environment under a unique name; Python (rpy2) reads it from there and writes its result
# next to it. reticulate carries only that name and plain values (strings, numbers, logicals).

.call_door <- function(fun, object, args, verbose = TRUE, arguments = character(), call = NULL) {
  door <- .door()
  .state$n_calls <- (if (is.null(.state$n_calls)) 0L else .state$n_calls) + 1L
  name <- paste0(".pyscvibridge_bridge_", Sys.getpid(), "_", .state$n_calls)
  bridge <- new.env(parent = emptyenv())
  if (!is.null(object)) bridge$object <- object
  assign(name, bridge, envir = globalenv())
  on.exit(rm(list = name, envir = globalenv()), add = TRUE)

  emit <- if (isTRUE(verbose)) function(text) message(text) else NULL
  # Every Python value is made here, before the call, and stays referenced during it; then R's
  # garbage collector runs. The reason: while rpy2 evaluates R code for Python, the GIL is
  # released, and reticulate 1.28 finalises unreachable Python objects without taking it back,
  # which aborts the process ("PyThreadState_Get: ... the GIL is released"). Collecting them now
  # leaves none to finalise during the call.
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

# A PyscvibridgeError (bad input) raised in Python, reported as a cli error naming the R argument.
.abort_python_error <- function(answer, arguments, call) {
  msg <- answer$error
  arg <- answer$argument
  if (!is.null(arg) && arg %in% names(arguments)) arg <- arguments[[arg]]
  header <- if (!is.null(arg) && nzchar(arg)) "Problem with {.arg {arg}}." else "scVI integration failed."
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
