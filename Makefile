# Targets behind README's two commands (scripts/demo.sh -> `make demo`, scripts/test.sh -> `make test`); both set up first.
VENV ?= .venv
PY := $(VENV)/bin/python
export R_LIBS_USER := $(CURDIR)/$(VENV)/Rlib
export PYSCVIBRIDGE_PYTHON := $(CURDIR)/$(PY)

.PHONY: setup demo test test-python test-r lint

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/pyscvibridge demo --out results/cellbench

test: setup lint test-python test-r

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-python:
	$(PY) -m pytest -n 2 --dist loadgroup

# The R package's testthat suite against the package installed by setup (into $(VENV)/Rlib, on
# R_LIBS_USER); PYSCVIBRIDGE_PYTHON is exported, so tests that need Python run and never skip.
test-r: setup
	Rscript -e 'testthat::test_dir("tests/testthat", package = "pyscvibridge", load_package = "installed", reporter = "summary", stop_on_failure = TRUE)'
