# Runs the R package's tests (R CMD check, or `make test-r`).
# Tests that need Python skip when none is found, unless PYSCVIBRIDGE_PYTHON is set (as the
# Makefile and CI do): then a missing Python is a failure, not a skip.
library(testthat)
library(pyscvibridge)

test_check("pyscvibridge")
