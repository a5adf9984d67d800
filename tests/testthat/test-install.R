# install_pyscvibridge(): bad input and failures each give one clear message; a set-up environment
# is only checked. (The whole path, from the R tarball to RunScVI(), is tests/python/test_install.py.)

# A stand-in interpreter that reports this Python version.
old_python <- function(version) {
  python <- file.path(withr::local_tempdir(.local_envir = parent.frame()), "python3")
  writeLines(c("#!/bin/sh", paste0("echo ", version), "echo \"$0\""), python)
  Sys.chmod(python, "755")
  python
}

# A real Python >= 3.10 to make environments from (the one the tests' pyscvibridge runs on).
base_python <- function() {
  skip_if_no_python()
  out <- system2(scvi_python(), c("-c", shQuote("import sys; print(sys._base_executable)")), stdout = TRUE)
  out[length(out)]
}

test_that("a Python older than 3.10 is refused, naming its version and what to do", {
  python <- old_python("3.8.10")
  env <- file.path(withr::local_tempdir(), "env")
  err <- expect_error(install_pyscvibridge(env, python = python), class = "pyscvibridge_install_error")
  msg <- conditionMessage(err)
  expect_match(msg, "is Python 3.8.10; pyscvibridge needs Python 3.10 or newer", fixed = TRUE)
  expect_match(msg, "install_python()", fixed = TRUE)
  expect_true(inherits(err, "pyscvibridge_no_python"))
  expect_false(dir.exists(env))
})

test_that("with no Python on the PATH, the message says to install one and pass `python`", {
  empty <- withr::local_tempdir()
  withr::local_envvar(PATH = empty)
  err <- expect_error(
    install_pyscvibridge(file.path(empty, "env")),
    class = "pyscvibridge_install_error"
  )
  msg <- conditionMessage(err)
  expect_match(msg, "No Python 3.10 or newer was found", fixed = TRUE)
  expect_match(msg, "install_pyscvibridge(python = ", fixed = TRUE)
})

test_that("only older Pythons on the PATH: the message lists them", {
  python <- old_python("3.9.2")
  withr::local_envvar(PATH = dirname(python))
  err <- expect_error(install_pyscvibridge(file.path(tempdir(), "never")), class = "pyscvibridge_install_error")
  expect_match(conditionMessage(err), "(3.9.2)", fixed = TRUE)
})

test_that("a pip failure (an unreachable index) says which step failed and the command to run by hand", {
  python <- base_python()
  env <- file.path(withr::local_tempdir(), "env")
  # no pip configuration (this machine's local wheels), an index nobody answers on
  withr::local_envvar(PIP_CONFIG_FILE = "/dev/null", PIP_FIND_LINKS = NA, PIP_EXTRA_INDEX_URL = NA)
  err <- expect_error(
    suppressMessages(install_pyscvibridge(env,
      python = python, torch = "torch==2.13.0", torch_index = NULL, quiet = TRUE,
      pip_options = c("--index-url", "http://127.0.0.1:9/simple", "--retries", "0", "--timeout", "2")
    )),
    class = "pyscvibridge_install_error"
  )
  msg <- conditionMessage(err)
  expect_match(msg, "set-up failed while installing PyTorch", fixed = TRUE)
  expect_match(msg, "run by hand", fixed = TRUE)
  expect_match(msg, "-m pip install", fixed = TRUE)
  expect_match(msg, "http://127.0.0.1:9/simple", fixed = TRUE)
  expect_match(msg, "torch==2.13.0", fixed = TRUE)
  # pip's own last words are shown
  expect_match(msg, "No matching distribution found for torch==2.13.0", fixed = TRUE)
  # the environment was made; a second call goes on from there
  expect_true(file.exists(file.path(env, "bin", "python")))
})

test_that("an environment that is already set up is only checked", {
  skip_if_no_python()
  python <- scvi_python()
  env <- dirname(dirname(python))
  skip_if_not(file.exists(file.path(env, "pyvenv.cfg")), "the tests' Python is not in a virtual environment")
  expect_message(
    out <- install_pyscvibridge(env, torch = "torch==0.0.0-not-installed", pip_options = "--no-such-option"),
    "is already installed in",
    fixed = TRUE
  )
  expect_identical(out, file.path(env, "bin", "python"))
})

test_that("an R package installed from a source tree says it carries no wheel and what to pass instead", {
  skip_if(nzchar(system.file("python", package = "pyscvibridge")), "this installation carries the wheel")
  err <- expect_error(pyscvibridge:::.bundled_wheel(), class = "pyscvibridge_install_error")
  expect_match(conditionMessage(err), "carries no Python wheel", fixed = TRUE)
  expect_match(conditionMessage(err), "scripts/build_r_package.sh", fixed = TRUE)
})

test_that("rpy2 is kept below 3.6 for R older than 4.5 only; torch's CPU index is used on Linux", {
  expect_identical(pyscvibridge:::.rpy2_requirement(numeric_version("4.2.2")), "rpy2>=3.5.13,<3.6")
  expect_identical(pyscvibridge:::.rpy2_requirement(numeric_version("4.4.3")), "rpy2>=3.5.13,<3.6")
  expect_null(pyscvibridge:::.rpy2_requirement(numeric_version("4.5.0")))
  if (identical(Sys.info()[["sysname"]], "Linux")) {
    expect_identical(pyscvibridge:::.torch_cpu_index(), "https://download.pytorch.org/whl/cpu")
  }
})

test_that("envname: a name goes under WORKON_HOME, a path is used as it is", {
  withr::local_envvar(WORKON_HOME = "/opt/venvs")
  expect_identical(pyscvibridge:::.env_path("pyscvibridge"), "/opt/venvs/pyscvibridge")
  expect_identical(pyscvibridge:::.env_path("/tmp/x/env"), "/tmp/x/env")
  expect_error(pyscvibridge:::.env_path(c("a", "b")), class = "pyscvibridge_error")
})
