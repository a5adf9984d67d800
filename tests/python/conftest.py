"""Shared fixtures. R-starting fixtures start R in-process once per worker (xdist runs one R per worker)."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """tests/fixtures: small Seurat v5 objects (see tests/fixtures/PROVENANCE.md)."""
    return FIXTURES


@pytest.fixture(scope="session")
def r():
    """Evaluate R code in the embedded R session and return the rpy2 (robjects) result."""
    import rpy2.robjects as ro

    return ro.r


@pytest.fixture(scope="session")
def rglobal():
    """R's global environment (assign Python-side rpy2 objects to names for R code)."""
    import rpy2.robjects as ro

    return ro.globalenv


@pytest.fixture
def read_r(r):
    """read_r(path) -> the rpy2 object readRDS(path) gives."""

    def _read(path):
        return r["readRDS"](str(path))

    return _read


@pytest.fixture(scope="session")
def v5_joined_path() -> Path:
    return FIXTURES / "cellbench_small_v5.rds"


@pytest.fixture(scope="session")
def v5_split_path() -> Path:
    return FIXTURES / "cellbench_small_v5_split.rds"


@pytest.fixture(scope="session")
def pbmc_small_path() -> Path:
    return FIXTURES / "pbmc_small_v5.rds"
