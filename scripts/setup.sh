#!/usr/bin/env bash
# Idempotent set-up on Debian 12: R packages from apt (if missing), a virtual environment with the
# CPU build of torch installed first, this package with its extras, and the R package.
# A second run only checks and returns quickly.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
R_PKGS="r-base-core r-base-dev r-cran-seurat r-cran-seuratobject r-bioc-singlecellexperiment r-cran-reticulate r-cran-testthat r-cran-cli r-cran-rlang r-cran-roxygen2"

log() { printf '[setup] %s\n' "$*"; }

apt_install() {
  local SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 0. Build tools and Python's venv module (a minimal Debian image may lack them)
if ! command -v make >/dev/null || ! command -v gcc >/dev/null || ! "$PY" -c "import venv, ensurepip" >/dev/null 2>&1; then
  log "installing make, gcc and python3-venv from apt"
  apt_install make gcc g++ python3-venv python3-dev
fi

# 1. R and its packages (Debian's; CRAN is not needed)
if ! command -v Rscript >/dev/null || ! Rscript -e 'for (p in c("Seurat","SeuratObject","SingleCellExperiment","reticulate","testthat","cli","rlang","roxygen2")) if (!requireNamespace(p, quietly=TRUE)) quit(status=1)' >/dev/null 2>&1; then
  log "installing R packages from apt"
  # shellcheck disable=SC2086
  apt_install $R_PKGS
fi

# 2. Python virtual environment; torch first (the local CPU wheel), so nothing pulls a CUDA build
# rpy2 3.6 needs R >= 4.5 (R_getVar): with an older R, keep rpy2 3.5
RPY2=""
if Rscript -e 'quit(status = getRversion() >= "4.5")' >/dev/null 2>&1; then RPY2="rpy2>=3.5.13,<3.6"; fi
stamp="$VENV/.pyscvibridge-installed"
want=$(cat pyproject.toml DESCRIPTION | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  [ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PY" -m venv "$VENV"; }
  log "installing torch==2.13.0 (CPU) and pyscvibridge[test]"
  "$VENV/bin/pip" install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v '^WARNING: Location' || true
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[test]" ${RPY2:+"$RPY2"} 2>&1 | grep -v '^WARNING: Location' || true
  "$VENV/bin/python" -c "import pyscvibridge, scvi, rpy2.robjects, anndata2ri" >/dev/null 2>&1 \
    || { log "the Python install failed: run '$VENV/bin/pip install -e .[test]' to see why"; exit 1; }
  echo "$want" > "$stamp"
fi

# 3. The R package (when the repository holds one), reinstalled when its sources change
if [ -f DESCRIPTION ]; then
  rstamp="$VENV/.r-installed"
  rwant=$(cat DESCRIPTION NAMESPACE R/*.R src/*.c 2>/dev/null | sha256sum | cut -c1-16)
  if [ ! -f "$rstamp" ] || [ "$(cat "$rstamp")" != "$rwant" ]; then
    log "installing the R package"
    mkdir -p "$VENV/Rlib"
    R CMD INSTALL --no-test-load --library="$VENV/Rlib" . >/dev/null 2>"$VENV/r-install.log" \
      || { cat "$VENV/r-install.log"; exit 1; }
    echo "$rwant" > "$rstamp"
  fi
fi
log "ready ($VENV)"
