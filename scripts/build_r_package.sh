#!/usr/bin/env bash
# Build the R package tarball, pyscvibridge_<version>.tar.gz, with the Python package inside: the
# wheel of the same version goes into the tarball's inst/python/, where install_pyscvibridge()
# installs it from. Usage: bash scripts/build_r_package.sh [OUTDIR]  (default: the repository root)
# The Python used to build the wheel is $PYTHON, else .venv/bin/python, else python3; it needs the
# `build` package (in the test extra; `pip install build`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
"$PY" -c "import build" 2>/dev/null \
  || { echo "the Python package 'build' is missing: run '$PY -m pip install build'" >&2; exit 1; }

version=$(sed -n 's/^Version: *//p' DESCRIPTION)
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

# R CMD build copies the whole folder (.venv included) before it applies .Rbuildignore: build from
# a copy of the R package's files.
mkdir -p "$STAGE/pyscvibridge"
cp -r DESCRIPTION NAMESPACE LICENSE .Rbuildignore R src man inst tests "$STAGE/pyscvibridge/"
rm -f "$STAGE"/pyscvibridge/inst/python/*.whl "$STAGE"/pyscvibridge/src/*.o "$STAGE"/pyscvibridge/src/*.so

echo "[build] the Python wheel pyscvibridge-$version"
"$PY" -m build --wheel --outdir "$STAGE/pyscvibridge/inst/python" "$ROOT" >"$STAGE/wheel.log" 2>&1 \
  || { cat "$STAGE/wheel.log" >&2; exit 1; }
wheel="$STAGE/pyscvibridge/inst/python/pyscvibridge-$version-py3-none-any.whl"
[ -f "$wheel" ] || { echo "expected $wheel; the Python package's version must be DESCRIPTION's ($version)" >&2; ls "$STAGE/pyscvibridge/inst/python" >&2; exit 1; }

echo "[build] the R package pyscvibridge_$version.tar.gz"
(cd "$STAGE" && R CMD build --no-build-vignettes --no-manual pyscvibridge >build.log 2>&1) \
  || { cat "$STAGE/build.log" >&2; exit 1; }
mv "$STAGE/pyscvibridge_$version.tar.gz" "$OUT/"
echo "$OUT/pyscvibridge_$version.tar.gz"
