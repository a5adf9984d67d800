"""Names every part of pyscvibridge agrees on: ``uns`` keys, presets, reduction names, defaults.

One place for what would otherwise be a literal in several Python modules and in the R package.
The R package asks :func:`for_r` once per session (through the functions R calls) instead of
repeating these values in ``R/``.
"""

from __future__ import annotations

from typing import Any

# ---------------------------------------------------------------- AnnData keys

#: ``uns`` key of :func:`pyscvibridge.integrate`'s record (parameters, versions, history).
UNS_INTEGRATION = "scvi_integration"
#: ``uns`` key of :func:`pyscvibridge.train_scanvi`'s record.
UNS_SCANVI = "scanvi"
#: ``uns`` key of :func:`pyscvibridge.save_model`'s record (where the model went).
UNS_MODEL = "scvi_model"
#: ``uns`` key of :func:`pyscvibridge.map_query`'s record.
UNS_QUERY = "scvi_query"
#: ``obsm`` and ``uns`` key of :func:`pyscvibridge.corrected_expression`'s table and record.
NORMALIZED = "scvi_normalized"
#: ``uns`` key of the conversion manifest (:mod:`pyscvibridge.convert`).
UNS_CONVERSION = "conversion"

#: ``obsm`` keys the workflow writes, and the ``obs`` columns scANVI adds.
OBSM_SCVI = "X_scVI"
OBSM_UMAP = "X_umap"
OBSM_SCANVI = "X_scANVI"
OBSM_UMAP_SCANVI = "X_umap_scANVI"
SCANVI_COLUMNS = ("scanvi_prediction", "scanvi_probability")

# ---------------------------------------------------------------- training

#: Training presets (see ``pyscvibridge._training``) and the default one.
PRESETS = ("fast", "scvi-tools")
DEFAULT_PRESET = "fast"
N_TOP_GENES = 2000
N_LATENT = 10
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
UNLABELED_CATEGORY = "Unknown"
#: scVI model options every door takes by name (``scvi.model.SCVI``'s arguments), and the values
#: scvi-tools 1.4 accepts for two of them ("normal" is left out: it is not a count likelihood).
MODEL_OPTIONS = ("n_layers", "n_hidden", "gene_likelihood", "dispersion", "dropout_rate")
GENE_LIKELIHOODS = ("zinb", "nb", "poisson")
DISPERSIONS = ("gene", "gene-batch", "gene-label", "gene-cell")

# ---------------------------------------------------------------- what goes back into R objects

#: Name of the record in a Seurat object's ``@misc`` / an SCE's ``metadata()``, and of the
#: Seurat assay / SCE altExp holding corrected expression.
R_RECORD = "scVI"
R_EXPRESSION = "scVI"

#: ``obsm`` key -> reduction name, per kind of R object ("seurat", "sce").
REDUCTIONS = {
    "seurat": {OBSM_SCVI: "scVI", OBSM_UMAP: "umap.scVI"},
    "sce": {OBSM_SCVI: "scVI", OBSM_UMAP: "UMAP_scVI"},
}
SCANVI_REDUCTIONS = {
    "seurat": {OBSM_SCANVI: "scANVI", OBSM_UMAP_SCANVI: "umap.scANVI"},
    "sce": {OBSM_SCANVI: "scANVI", OBSM_UMAP_SCANVI: "UMAP_scANVI"},
}
#: The reduction name Seurat v5's ``IntegrateLayers(method = scVIIntegration)`` adds by default.
INTEGRATE_LAYERS_REDUCTION = "integrated.scvi"


def seurat_key(name: str) -> str:
    """The Seurat DimReduc key of reduction ``name``: its letters and digits, then ``_``.

    Seurat requires keys matching ``^[a-zA-Z][a-zA-Z0-9]*_$``: ``"umap.scVI"`` -> ``"umapscVI_"``.
    """
    key = "".join(c for c in name if c.isascii() and c.isalnum())
    if not key or not key[0].isalpha():
        key = "X" + key
    return key + "_"


def for_r() -> dict[str, Any]:
    """The conventions the R package uses, as plain values (strings, numbers, lists, dicts of them)."""
    reductions = {
        kind: {
            "scvi": names[OBSM_SCVI],
            "umap": names[OBSM_UMAP],
            "scanvi": SCANVI_REDUCTIONS[kind][OBSM_SCANVI],
            "umap_scanvi": SCANVI_REDUCTIONS[kind][OBSM_UMAP_SCANVI],
        }
        for kind, names in REDUCTIONS.items()
    }
    keys = {name: seurat_key(name) for name in reductions["seurat"].values()}
    return {
        "presets": list(PRESETS),
        "default_preset": DEFAULT_PRESET,
        "n_top_genes": N_TOP_GENES,
        "n_latent": N_LATENT,
        "unlabeled_category": UNLABELED_CATEGORY,
        "record": R_RECORD,
        "expression": R_EXPRESSION,
        "reductions": reductions,
        "seurat_keys": keys,
        "scanvi_columns": list(SCANVI_COLUMNS),
        "integrate_layers_reduction": INTEGRATE_LAYERS_REDUCTION,
        "model_options": list(MODEL_OPTIONS),
        "gene_likelihoods": list(GENE_LIKELIHOODS),
        "dispersions": list(DISPERSIONS),
    }
