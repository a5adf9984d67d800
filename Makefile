# Targets behind README's two commands (scripts/demo.sh -> `make demo`, scripts/test.sh -> `make test`); both set up first.
VENV ?= .venv
PY := $(VENV)/bin/python
export R_LIBS_USER := $(CURDIR)/$(VENV)/Rlib
export PYSCVIBRIDGE_PYTHON := $(CURDIR)/$(PY)

.PHONY: setup demo test test-python test-r check-r docs-check lint

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/pyscvibridge demo --out results/cellbench

test: setup lint docs-check test-python test-r check-r

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-python:
	$(PY) -m pytest -n 2 --dist loadgroup

# The R package's testthat suite against the package installed by setup (into $(VENV)/Rlib, on
# R_LIBS_USER); PYSCVIBRIDGE_PYTHON is exported, so tests that need Python run and never skip.
test-r: setup
	Rscript -e 'testthat::test_dir("tests/testthat", package = "pyscvibridge", load_package = "installed", reporter = "summary", stop_on_failure = TRUE)'

# man/ and NAMESPACE are roxygen2's output (Debian's roxygen2 7.2.3): regenerate them in a copy and
# compare. To update them: Rscript -e 'roxygen2::roxygenise(load_code = roxygen2::load_source)'
# (load_source: roxygen2's default would compile src/, which needs pkgbuild; the docs need only R/).
DOCSDIR := $(CURDIR)/$(VENV)/docs-check
docs-check: setup
	rm -rf $(DOCSDIR) && mkdir -p $(DOCSDIR) && cp -r DESCRIPTION NAMESPACE R man $(DOCSDIR)/
	cd $(DOCSDIR) && Rscript -e 'roxygen2::roxygenise(load_code = roxygen2::load_source)' >/dev/null 2>&1
	@diff -r man $(DOCSDIR)/man && diff NAMESPACE $(DOCSDIR)/NAMESPACE \
	  || { echo "man/ or NAMESPACE differs from what roxygen2 makes of R/: run Rscript -e 'roxygen2::roxygenise(load_code = roxygen2::load_source)'"; exit 1; }

# R CMD build + R CMD check of the R package (its examples run; its tests run in test-r). Fails on
# any ERROR or WARNING; NOTEs are printed.
CHECKDIR := $(CURDIR)/$(VENV)/rcheck
check-r: setup
	rm -rf $(CHECKDIR) && mkdir -p $(CHECKDIR)/pyscvibridge
	# build from a copy of the R package's files: R CMD build copies the whole folder (.venv included)
	# before it applies .Rbuildignore
	cp -r DESCRIPTION NAMESPACE LICENSE .Rbuildignore R src man inst tests $(CHECKDIR)/pyscvibridge/
	cd $(CHECKDIR) && R CMD build --no-build-vignettes pyscvibridge >build.log
	cd $(CHECKDIR) && R CMD check --no-manual --no-tests pyscvibridge_*.tar.gz >check.log 2>&1 \
	  || { tail -40 check.log; exit 1; }
	@grep -E "^Status:" $(CHECKDIR)/pyscvibridge.Rcheck/00check.log
	@! grep -qE "^Status:.*(WARNING|ERROR)" $(CHECKDIR)/pyscvibridge.Rcheck/00check.log \
	  || { grep -B2 -A8 -E "\.\.\. (WARNING|ERROR|NOTE)" $(CHECKDIR)/pyscvibridge.Rcheck/00check.log; exit 1; }
