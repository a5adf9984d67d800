#!/usr/bin/env bash
# Set up (idempotent) and run every test: ruff, the man/ check, pytest, testthat, R CMD check.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make test
