"""The conversion manifest: what went where, what was renamed, what was left out and why.

Stored as ``uns["conversion"]`` (R -> AnnData) and returned / logged for AnnData -> R. Every value
is a str, an int, a list of str or a dict of those, so the AnnData can be written to ``.h5ad`` as is::

    {
        "direction": "R -> AnnData",
        "source": "Seurat",                      # or "SingleCellExperiment", "AnnData"
        "details": {"assay": "RNA", "assay_class": "Assay5", "SeuratObject": "5.0.2", ...},
        "mapped": {"layers['counts']": "RNA counts (view of dgCMatrix)", "obs": "meta.data (8 columns)", ...},
        "renamed": {"features": {"old_name": "new-name", ...}, ...},
        "dropped": {"scale.data": "dense scaled values; recompute ...", ...},
        "notes": ["...", ...],
        "column_classes": {"obs": {"sample": "character", "group": "factor", ...}, "var": {...}},
    }

``details`` also lists what was not converted, for choosing another part: a Seurat object's every
assay (``assay_table``: ``{"RNA": {"class": "Assay5", "n_features": 2000, "n_cells": 400, "layers":
["counts", "data"]}, "ADT": {...}}``) and its ``active_assay``; a SingleCellExperiment's ``assays``
(names) and ``alt_exps`` (``{"ADT": {"n_features": 30, "n_cells": 400, "assays": ["counts"]}}``).

``column_classes`` holds the R class of each converted metadata column (``factor``, ``ordered``,
``character``, ``logical``, ``integer``, ``double``, ``Date``, ``POSIXct``), so that AnnData -> R
gives each column its class back after a trip through ``.h5ad`` (which stores strings as
categoricals and dates as numbers).
"""

from __future__ import annotations

import logging

logger = logging.getLogger("pyscvibridge.convert")


class Manifest:
    """Collects the record of one conversion."""

    def __init__(self, direction: str, source: str):
        self.direction = direction
        self.source = source
        self.details: dict[str, str] = {}
        self.mapped: dict[str, str] = {}
        self.renamed: dict[str, dict[str, str]] = {}
        self.dropped: dict[str, str] = {}
        self.notes: list[str] = []
        self.column_classes: dict[str, dict[str, str]] = {}

    def detail(self, key: str, value) -> None:
        self.details[key] = value if isinstance(value, list | dict) else str(value)

    def map(self, dest: str, source: str) -> None:
        self.mapped[dest] = source

    def rename(self, what: str, old: str, new: str) -> None:
        self.renamed.setdefault(what, {})[str(old)] = str(new)

    def drop(self, what: str, why: str) -> None:
        self.dropped[what] = why

    def column_class(self, part: str, column: str, rclass: str) -> None:
        self.column_classes.setdefault(part, {})[str(column)] = rclass

    def note(self, text: str) -> None:
        self.notes.append(text)

    def to_dict(self) -> dict:
        return {
            "direction": self.direction,
            "source": self.source,
            "details": dict(self.details),
            "mapped": dict(self.mapped),
            "renamed": {k: dict(v) for k, v in self.renamed.items()},
            "dropped": dict(self.dropped),
            "notes": list(self.notes),
            "column_classes": {k: dict(v) for k, v in self.column_classes.items()},
        }

    def log(self) -> None:
        logger.info("converted %s (%s)", self.source, self.direction)
        for dest, src in self.mapped.items():
            logger.info("  %s <- %s", dest, src)
        for what, pairs in self.renamed.items():
            shown = ", ".join(f"{o!r} -> {n!r}" for o, n in list(pairs.items())[:5])
            more = f" (and {len(pairs) - 5} more)" if len(pairs) > 5 else ""
            logger.info("  renamed %d %s: %s%s", len(pairs), what, shown, more)
        for what, why in self.dropped.items():
            logger.info("  not converted: %s (%s)", what, why)
        for text in self.notes:
            logger.info("  note: %s", text)

    def __repr__(self) -> str:
        return f"Manifest({self.to_dict()!r})"
