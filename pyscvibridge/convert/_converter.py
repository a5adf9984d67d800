"""An rpy2 converter for notebooks: anndata2ri's, with pyscvibridge's rules for single-cell objects first.

``pyscvibridge.converter`` (built on first access) is used like anndata2ri's::

    %%R -c pyscvibridge.converter -i adata      # AnnData -> a SingleCellExperiment named adata in R
    %%R -c pyscvibridge.converter -o obj        # a Seurat object or SCE in R -> an AnnData named obj

    with localconverter(pyscvibridge.converter):
        adata = robjects.globalenv["obj"]

R -> Python: a Seurat object (v4, or v5 with joined or split layers) or a SingleCellExperiment goes
through :func:`~pyscvibridge.convert.from_r` (zero-copy views, the manifest in ``uns["conversion"]``);
every other object (data frames, matrices, vectors, ``DataFrame``) as anndata2ri converts it.
Python -> R: an AnnData goes through :func:`~pyscvibridge.convert.to_r` (a SingleCellExperiment by
default; ``make_converter(kind="Seurat")`` for Seurat objects); everything else as anndata2ri does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import PyscvibridgeError, import_or_hint

if TYPE_CHECKING:
    from rpy2.robjects.conversion import Converter

    from ._write import Kind

_DEFAULT: Converter | None = None


def make_converter(*, kind: Kind = "SingleCellExperiment", assay: str | None = None) -> Converter:
    """Build an rpy2 converter: anndata2ri's, with pyscvibridge's AnnData <-> Seurat/SCE rules taking precedence.

    Parameters
    ----------
    kind
        What an AnnData becomes in R: ``"SingleCellExperiment"`` (as with anndata2ri) or ``"Seurat"``.
    assay
        R -> AnnData: the assay to convert (see :func:`~pyscvibridge.convert.from_r`; default: the
        active Seurat assay, the SCE's ``counts``). AnnData -> Seurat: the assay to create (default ``"RNA"``).

    Returns
    -------
    An :class:`rpy2.robjects.conversion.Converter` for ``localconverter(...)`` or ``%%R -c``.
    """
    if kind not in ("Seurat", "SingleCellExperiment"):
        msg = f"kind must be 'Seurat' or 'SingleCellExperiment', not {kind!r}"
        raise PyscvibridgeError(msg)
    import_or_hint("rpy2.robjects", "r")
    anndata2ri = import_or_hint("anndata2ri", "r")
    from anndata import AnnData
    from rpy2 import robjects
    from rpy2.rinterface import SexpS4
    from rpy2.robjects.conversion import Converter, localconverter

    from ._api import _kind, from_r
    from ._write import to_r

    base = anndata2ri.converter
    ours = Converter(f"pyscvibridge (AnnData -> {kind})")

    @ours.rpy2py.register(SexpS4)
    def _s4_to_python(obj: SexpS4) -> Any:
        try:
            _kind(obj)
        except PyscvibridgeError:  # not a Seurat object or SCE: anndata2ri's rules
            return base.rpy2py(obj)
        # pyscvibridge's conversion calls R with rpy2's default rules, as outside any converter
        with localconverter(robjects.default_converter):
            return from_r(obj, assay=assay)

    @ours.py2rpy.register(AnnData)
    def _anndata_to_r(adata: AnnData) -> Any:
        with localconverter(robjects.default_converter):
            return to_r(adata, kind=kind, assay=assay or "RNA")

    return base + ours


def default_converter() -> Converter:
    """``pyscvibridge.converter``: :func:`make_converter` with its defaults, built once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = make_converter()
    return _DEFAULT
