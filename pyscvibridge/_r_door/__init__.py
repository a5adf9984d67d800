"""The functions the R package calls through reticulate (``RunScVI()``, ``MapScVIQuery()``,
``scVIIntegration()``, ``cellbench()``).

reticulate carries only names and plain values here (Debian's reticulate cannot convert NumPy 2
arrays). R keeps a hand-off environment per call in its package's private state, with the object
in it as ``object``; these functions read it with rpy2 from the same R session, convert it with
:mod:`pyscvibridge.convert` (a view of R's memory), run :func:`pyscvibridge._pipeline.run` (or the
query mapping), and bind the R object with the results added as ``result`` in that environment.
Nothing is written to disk and no count matrix goes back to R.

Every function returns a dict of plain values: ``{"ok": True, "info": {...}, "warnings": [...]}``,
or ``{"ok": False, "error": message, "argument": the offending option or None, ...}`` for a
:class:`~pyscvibridge.PyscvibridgeError`, which R turns into a ``cli`` error.
"""

from __future__ import annotations

from .._conventions import for_r as conventions
from .cellbench import load_cellbench
from .integrate import run_integrate
from .integrate_layers import run_integrate_layers
from .map_query import run_map_query

__all__ = ["conventions", "load_cellbench", "run_integrate", "run_integrate_layers", "run_map_query"]
