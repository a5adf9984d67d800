"""Bundled and downloadable datasets.

- :func:`cellbench`: CellBench cell-line mixtures (real, 1,408 cells, 5 batches, 5 cell lines), bundled.
- :func:`openproblems_bmmc`: the NeurIPS 2021 BMMC multiome data the scVI integration tutorial uses,
  downloaded once into a cache and verified.
"""

from __future__ import annotations

from ._bmmc import BMMC_URL, openproblems_bmmc
from ._cellbench import cellbench

__all__ = ["BMMC_URL", "cellbench", "openproblems_bmmc"]
