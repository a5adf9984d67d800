# Finding Python: option, then environment variable, then the set-up's virtual environment, then
# install_pyscvibridge()'s; the Python package's version checked against the R package's.

# Run `code` with pyscvibridge's cached interpreter forgotten (the door, once imported, stays).
with_fresh_lookup <- function(code) {
  state <- pyscvibridge:::.state
  old <- state$python
  state$python <- NULL
  on.exit(state$python <- old)
  force(code)
}

# A stand-in interpreter answering the lookup's probe with these lines.
fake_python <- function(lines, dir = withr::local_tempdir(.local_envir = parent.frame())) {
  python <- file.path(dir, "python")
  writeLines(c("#!/bin/sh", paste("echo", shQuote(lines))), python)
  Sys.chmod(python, "755")
  python
}

test_that("an option pointing to a missing Python is a clear error naming the option", {
  withr::local_options(pyscvibridge.python = file.path(tempdir(), "no-such-python"))
  with_fresh_lookup({
    err <- expect_error(scvi_python(), class = "pyscvibridge_no_python")
    expect_match(conditionMessage(err), "pyscvibridge.python", fixed = TRUE)
    expect_match(conditionMessage(err), "does not exist")
    expect_false(scvi_available())
  })
})

test_that("an environment variable pointing to a Python without pyscvibridge is a clear error", {
  # A stand-in interpreter that answers as a Python without the package does.
  python <- fake_python(c("python=3.11.7", "pyscvibridge=", "missing="))
  withr::local_options(pyscvibridge.python = NULL)
  withr::local_envvar(PYSCVIBRIDGE_PYTHON = python)
  with_fresh_lookup({
    err <- expect_error(scvi_python(), class = "pyscvibridge_no_python")
    expect_match(conditionMessage(err), "PYSCVIBRIDGE_PYTHON", fixed = TRUE)
    expect_match(conditionMessage(err), "cannot import pyscvibridge", fixed = TRUE)
  })
})

test_that("a Python that lacks scvi-tools or rpy2 is named as such", {
  python <- fake_python(c("python=3.11.7", "pyscvibridge=0.1.0", "missing=scvi,rpy2"))
  withr::local_options(pyscvibridge.python = python)
  with_fresh_lookup({
    err <- expect_error(scvi_python(), class = "pyscvibridge_no_python")
    expect_match(conditionMessage(err), "lacks the Python modules scvi, rpy2", fixed = TRUE)
  })
})

test_that("the option wins over the environment variable", {
  skip_if_no_python()
  good <- scvi_python()
  withr::local_options(pyscvibridge.python = good)
  withr::local_envvar(PYSCVIBRIDGE_PYTHON = file.path(tempdir(), "no-such-python"))
  with_fresh_lookup(expect_identical(scvi_python(), good))
})

test_that("when no candidate exists, the message lists what was tried and names install_pyscvibridge()", {
  missing <- file.path(tempdir(), c("venv-a", "venv-b"), "bin", "python")
  cands <- lapply(missing, function(p) list(path = p, source = "a test", explicit = FALSE))
  err <- expect_error(pyscvibridge:::.find_python(cands), class = "pyscvibridge_no_python")
  msg <- conditionMessage(err)
  expect_match(msg, "pyscvibridge::install_pyscvibridge()", fixed = TRUE)
  expect_match(msg, "pyscvibridge.python", fixed = TRUE)
  expect_match(msg, missing[2], fixed = TRUE)
})

test_that("the set-up's virtual environment is found from where the package is installed", {
  lib <- dirname(system.file(package = "pyscvibridge"))
  venv_python <- file.path(dirname(lib), "bin", "python")
  cands <- vapply(pyscvibridge:::.python_candidates(), `[[`, "", "path")
  expect_true(venv_python %in% cands)
  withr::local_options(pyscvibridge.python = "/opt/x/python")
  withr::local_envvar(PYSCVIBRIDGE_PYTHON = "/opt/y/python")
  cands <- vapply(pyscvibridge:::.python_candidates(), `[[`, "", "path")
  expect_identical(cands[1:3], c("/opt/x/python", "/opt/y/python", venv_python))
})

test_that("RunScVI() without a usable Python stops with one clear message", {
  skip_if_not_installed("callr")
  skip_if_no_seurat_object()
  err <- tryCatch(
    callr::r(function() {
      options(pyscvibridge.python = "/nonexistent/bin/python")
      pyscvibridge::RunScVI(SeuratObject::pbmc_small, batch_key = "groups")
    }, libpath = .libPaths()),
    error = function(e) e
  )
  expect_s3_class(err, "error")
  msg <- conditionMessage(err$parent)
  expect_match(msg, "pyscvibridge.python", fixed = TRUE)
  expect_match(msg, "/nonexistent/bin/python", fixed = TRUE)
  expect_true(inherits(err$parent, "pyscvibridge_no_python"))
})


test_that("a Python older than 3.10 is refused with its version", {
  python <- fake_python(c("python=3.8.10", "pyscvibridge=", "missing="))
  withr::local_options(pyscvibridge.python = python)
  with_fresh_lookup({
    err <- expect_error(scvi_python(), class = "pyscvibridge_no_python")
    expect_match(conditionMessage(err), "is Python 3.8.10; pyscvibridge needs Python 3.10 or newer", fixed = TRUE)
  })
})

test_that("a Python package of another version than the R package's: one message saying how to update", {
  python <- fake_python(c("python=3.11.7", "pyscvibridge=0.0.9", "missing="))
  withr::local_options(pyscvibridge.python = python)
  r_version <- as.character(utils::packageVersion("pyscvibridge"))
  with_fresh_lookup({
    err <- expect_error(scvi_python(), class = "pyscvibridge_version_mismatch")
    msg <- conditionMessage(err)
    expect_match(msg, "is version 0.0.9, but this R package is version ", fixed = TRUE)
    expect_match(msg, r_version, fixed = TRUE)
    expect_match(msg, "install_pyscvibridge(", fixed = TRUE)
    expect_match(msg, dirname(dirname(python)), fixed = TRUE)
    expect_true(inherits(err, "pyscvibridge_error"))
    expect_false(scvi_available())
  })
  # the same version is accepted, and the check can be turned off
  python_ok <- fake_python(c("python=3.11.7", paste0("pyscvibridge=", r_version), "missing="))
  withr::local_options(pyscvibridge.python = python_ok)
  with_fresh_lookup(expect_identical(scvi_python(), python_ok))
  withr::local_options(pyscvibridge.python = python, pyscvibridge.check_version = FALSE)
  with_fresh_lookup(expect_identical(scvi_python(), python))
})

test_that("the last place looked is install_pyscvibridge()'s environment under WORKON_HOME", {
  withr::local_envvar(WORKON_HOME = "/opt/venvs")
  cands <- vapply(pyscvibridge:::.python_candidates(), `[[`, "", "path")
  expect_identical(cands[length(cands)], "/opt/venvs/pyscvibridge/bin/python")
})
