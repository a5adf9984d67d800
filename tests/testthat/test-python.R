# Finding Python: option, then environment variable, then the set-up's virtual environment.

# Run `code` with pyscvibridge's cached interpreter forgotten (the door, once imported, stays).
with_fresh_lookup <- function(code) {
  state <- pyscvibridge:::.state
  old <- state$python
  state$python <- NULL
  on.exit(state$python <- old)
  force(code)
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
  # A stand-in interpreter that fails the way a Python without the package does.
  python <- file.path(withr::local_tempdir(), "python")
  writeLines(c(
    "#!/bin/sh",
    "echo \"ModuleNotFoundError: No module named 'pyscvibridge'\" >&2",
    "exit 1"
  ), python)
  Sys.chmod(python, "755")
  withr::local_options(pyscvibridge.python = NULL)
  withr::local_envvar(PYSCVIBRIDGE_PYTHON = python)
  with_fresh_lookup({
    err <- expect_error(scvi_python(), class = "pyscvibridge_no_python")
    expect_match(conditionMessage(err), "PYSCVIBRIDGE_PYTHON", fixed = TRUE)
    expect_match(conditionMessage(err), "cannot import pyscvibridge", fixed = TRUE)
  })
})

test_that("a Python that lacks scvi-tools or rpy2 is named as such", {
  python <- file.path(withr::local_tempdir(), "python")
  writeLines(c("#!/bin/sh", "echo 'missing: scvi, rpy2'"), python)
  Sys.chmod(python, "755")
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

test_that("when no candidate exists, the message lists what was tried and says to run make setup", {
  missing <- file.path(tempdir(), c("venv-a", "venv-b"), "bin", "python")
  cands <- lapply(missing, function(p) list(path = p, source = "a test", explicit = FALSE))
  err <- expect_error(pyscvibridge:::.find_python(cands), class = "pyscvibridge_no_python")
  msg <- conditionMessage(err)
  expect_match(msg, "make setup", fixed = TRUE)
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
