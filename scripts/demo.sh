#!/usr/bin/env bash
# Set up (idempotent) and integrate the bundled CellBench data: .h5ad, plots and metrics in results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make demo
