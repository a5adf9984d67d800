#!/usr/bin/env bash
# Set up (idempotent) and run every test: ruff, pytest (Python), testthat (R).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make test
