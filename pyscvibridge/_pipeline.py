"""The one pipeline behind every door: integrate -> scANVI -> corrected expression -> saved model.

The CLI (``pyscvibridge integrate`` and ``demo``), the functions R calls (``RunScVI()``) and any
other entry point build a :class:`Spec` from their arguments and call :func:`run`; they only parse
arguments, read inputs, call it and write outputs. :func:`check` holds every cheap input check,
once: a bad option raises :class:`OptionError`, which names the :class:`Spec` field to blame
(``option``) so that each door can say it in its own spelling (``--batch-key``, ``batch_key``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _conventions as conv
from ._checks import check_obs_key
from ._errors import PyscvibridgeError

if TYPE_CHECKING:
    import anndata as ad

logger = logging.getLogger("pyscvibridge")

Say = Callable[[str], Any]


class OptionError(PyscvibridgeError):
    """A bad value of one option; ``option`` is the :class:`Spec` field it came from."""

    def __init__(self, msg: str, option: str):
        super().__init__(msg)
        self.option = option


@dataclass
class Spec:
    """Every option of a pipeline run (see :func:`pyscvibridge.integrate` for their meaning).

    ``preset=None`` is the default preset; ``model_kwargs`` go to :class:`scvi.model.SCVI`
    (``n_layers``, ``n_hidden``, ``gene_likelihood``, ``dispersion``, ``dropout_rate``, ...),
    ``train_kwargs`` to its ``train()`` and to scANVI's. ``genes`` trains on these genes instead of
    the highly variable ones. ``scanvi`` continues with scANVI on ``labels_key``;
    ``corrected_genes`` adds their batch-corrected expression (decoded as ``transform_batch``);
    ``save_model`` saves the last model trained into a new or empty directory.
    """

    batch_key: str | None = None
    labels_key: str | None = None
    layer: str | None = None
    categorical_covariate_keys: list[str] = field(default_factory=list)
    continuous_covariate_keys: list[str] = field(default_factory=list)
    n_top_genes: int = conv.N_TOP_GENES
    n_latent: int = conv.N_LATENT
    preset: str | None = None
    max_epochs: int | None = None
    seed: int = 0
    accelerator: str = "auto"
    devices: int | str | list[int] = "auto"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    train_kwargs: dict[str, Any] = field(default_factory=dict)
    genes: list[str] | None = None
    scanvi: bool = False
    unlabeled_category: str = conv.UNLABELED_CATEGORY
    scanvi_epochs: int | None = None
    corrected_genes: list[str] | None = None
    transform_batch: str | list[str] | None = None
    save_model: str | os.PathLike | None = None
    overwrite_model: bool = False


@dataclass
class Result:
    """What :func:`run` made: the AnnData, the last model trained, its record, what was added."""

    adata: ad.AnnData
    model: Any
    record: dict[str, Any]
    added: list[str] = field(default_factory=list)
    expression: str | None = None


class _Words:
    """How a door spells option names (``spell``) and quotes values (``quote``) in messages."""

    def __init__(self, spell: Mapping[str, str | None] | None, quote: Callable[[Any], str]):
        self.names = dict(spell or {})
        self.quote = quote

    def __call__(self, option: str) -> str:
        name = self.names.get(option, option)
        return option if name is None else name

    def has(self, option: str) -> bool:
        return self.names.get(option, option) is not None

    def many(self, values) -> str:
        values = list(values)
        shown = ", ".join(self.quote(v) for v in values[:8])
        return shown + (f", ... ({len(values)} in all)" if len(values) > 8 else "")


def check(
    adata: ad.AnnData,
    spec: Spec,
    *,
    spell: Mapping[str, str | None] | None = None,
    quote: Callable[[Any], str] = repr,
) -> None:
    """Every cheap check of ``spec`` against ``adata``, before any training.

    ``spell`` maps :class:`Spec` field names to the door's names for them (``None``: the door has
    no such option); ``quote`` writes values in messages (``repr`` in Python). Raises
    :class:`OptionError`.
    """
    w = _Words(spell, quote)
    if spec.batch_key is None:
        msg = f"{w('batch_key')} is required: name the cell-metadata column that holds the batch."
        raise OptionError(msg, "batch_key")
    _column(adata, spec.batch_key, "batch_key", w)
    if spec.labels_key is not None:  # NA labels: unlabeled for scANVI, left out of the metrics
        _column(adata, spec.labels_key, "labels_key", w, allow_na=True)
    for key in spec.categorical_covariate_keys:
        _column(adata, key, "categorical_covariate_keys", w)
    for key in spec.continuous_covariate_keys:
        col = _column(adata, key, "continuous_covariate_keys", w)
        if col.dtype.kind not in "biuf":
            msg = (
                f"{w('continuous_covariate_keys')} {quote(key)} must be a numeric column, but its type is "
                f"{col.dtype}. Pass it as {w('categorical_covariate_keys')} instead."
            )
            raise OptionError(msg, "continuous_covariate_keys")
    if spec.layer is not None and spec.layer not in adata.layers:
        msg = (
            f"{w('layer')} {quote(spec.layer)} is not a layer of the data (layers: "
            f"{w.many(adata.layers) or 'none'}). Name the layer that holds raw counts."
        )
        raise OptionError(msg, "layer")
    if spec.preset is not None and spec.preset not in conv.PRESETS:
        msg = f"{w('preset')} must be one of {w.many(conv.PRESETS)}, not {quote(spec.preset)}."
        raise OptionError(msg, "preset")
    for option, least in (
        ("n_top_genes", 1),
        ("n_latent", 1),
        ("max_epochs", 1),
        ("scanvi_epochs", 1),
        ("seed", 0),
    ):
        value = getattr(spec, option)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            msg = f"{w(option)} must be a whole number of at least {least}, not {quote(value)}."
            raise OptionError(msg, option)
    _check_assay(adata, spec, w)
    _check_model_options(spec.model_kwargs, w)
    if spec.genes is not None:
        _genes_present(adata, spec.genes, "genes", w)
    if spec.scanvi and spec.labels_key is None:
        msg = (
            f"{w('scanvi')} needs {w('labels_key')}: the cell-metadata column with the known labels "
            f"(cells labelled {quote(spec.unlabeled_category)} or NA are predicted)."
        )
        raise OptionError(msg, "labels_key")
    _check_expression(adata, spec, w)
    if spec.save_model is not None:
        _check_model_dir(Path(spec.save_model), spec.overwrite_model, w)


def _check_model_options(model_kwargs: Mapping[str, Any], w: _Words) -> None:
    """scVI's common model options (``conv.MODEL_OPTIONS``) in ``model_kwargs``, checked by value.

    Each error names the option as the door spells it (``n_layers``, ``nlayers``, ``--n-layers``).
    """
    for option in ("n_layers", "n_hidden"):
        value = model_kwargs.get(option)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            msg = f"{w(option)} must be a whole number of at least 1, not {w.quote(value)}."
            raise OptionError(msg, option)
    rate = model_kwargs.get("dropout_rate")
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1
    ):
        msg = f"{w('dropout_rate')} must be a number from 0 up to (not including) 1, not {w.quote(rate)}."
        raise OptionError(msg, "dropout_rate")
    for option, choices in (
        ("gene_likelihood", conv.GENE_LIKELIHOODS),
        ("dispersion", conv.DISPERSIONS),
    ):
        value = model_kwargs.get(option)
        if value is not None and value not in choices:
            msg = f"{w(option)} must be one of {w.many(choices)}, not {w.quote(value)}."
            raise OptionError(msg, option)
    if "n_latent" in model_kwargs:
        msg = f"{w('n_latent')} is an option of its own; leave it out of {w('model_kwargs')}."
        raise OptionError(msg, "model_kwargs")


def _check_assay(adata: ad.AnnData, spec: Spec, w: _Words) -> None:
    """The data converted from R is gene expression (not an ADT, HTO or ATAC assay): see ``_assays``."""
    from ._assays import assay_problem

    msg = assay_problem(
        adata, spec.n_top_genes, option=w("assay"), n_top_option=w("n_top_genes"), quote=w.quote
    )
    if msg is not None:
        raise OptionError(msg, "assay")


def _column(adata: ad.AnnData, key: str, option: str, w: _Words, *, allow_na: bool = False):
    try:
        return check_obs_key(adata, key, w(option), quote=w.quote, allow_na=allow_na)
    except PyscvibridgeError as e:
        raise OptionError(str(e), option) from None


def _genes_present(adata: ad.AnnData, genes: list[str], option: str, w: _Words) -> None:
    missing = [g for g in genes if g not in adata.var_names]
    if missing:
        msg = (
            f"{w(option)}: {len(missing)} of {len(genes)} genes are not in the object: {w.many(missing[:5])}"
            f"{', ...' if len(missing) > 5 else ''}. Gene names look like {w.many(adata.var_names[:3])}."
        )
        raise OptionError(msg, option)


def _check_expression(adata: ad.AnnData, spec: Spec, w: _Words) -> None:
    if spec.corrected_genes is None:
        if spec.transform_batch is not None:
            msg = (
                f"{w('transform_batch')} applies to corrected expression; give the genes in "
                f"{w('corrected_genes')}."
            )
            raise OptionError(msg, "transform_batch")
        return
    if not spec.corrected_genes:
        msg = f"{w('corrected_genes')} is empty: name the genes to return corrected expression for."
        raise OptionError(msg, "corrected_genes")
    _genes_present(adata, spec.corrected_genes, "corrected_genes", w)
    wanted = [spec.transform_batch] if isinstance(spec.transform_batch, str) else spec.transform_batch
    if wanted is not None and list(wanted) != ["all"]:
        levels = set(map(str, adata.obs[spec.batch_key].dropna().unique()))
        if unknown := [b for b in wanted if str(b) not in levels]:
            msg = (
                f"{w('transform_batch')} {w.many(unknown)} {'is' if len(unknown) == 1 else 'are'} not a batch "
                f"of {w.quote(spec.batch_key)}: choose among {w.many(sorted(levels))}, or 'all'."
            )
            raise OptionError(msg, "transform_batch")


def _check_model_dir(path: Path, overwrite: bool, w: _Words) -> None:
    from ._atomic import check_writable_dir

    if path.exists() and not path.is_dir():
        msg = f"{w('save_model')} {w.quote(str(path))} is a file; give a directory for the model."
        raise OptionError(msg, "save_model")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        fix = f"pass {w('overwrite_model')}" if w.has("overwrite_model") else "delete that one first"
        msg = (
            f"{w('save_model')} directory {w.quote(str(path))} already exists and is not empty; "
            f"choose another directory or {fix}."
        )
        raise OptionError(msg, "save_model")
    try:
        check_writable_dir(path.parent, f"the parent directory of {w('save_model')}")
    except PyscvibridgeError as e:
        raise OptionError(str(e), "save_model") from None


def run(
    adata: ad.AnnData,
    spec: Spec,
    *,
    progress: bool = True,
    callbacks: Callable[[str], list] | None = None,
    say: Say | None = None,
    spell: Mapping[str, str | None] | None = None,
    quote: Callable[[Any], str] = repr,
) -> Result:
    """Check ``spec``, then integrate, and as asked scANVI, corrected expression and the saved model.

    Parameters
    ----------
    adata
        The data, raw counts in ``spec.layer`` (default ``layers["counts"]``, else X); changed in place.
    spec
        The options.
    progress
        Show scvi-tools' progress bars.
    callbacks
        Called with the model's name (``"scVI"``, ``"scANVI"``): Lightning callbacks for its training.
    say
        Where progress lines go (what is integrated, where the model was saved), if anywhere.
    spell, quote
        As for :func:`check`.

    Returns
    -------
    A :class:`Result`; ``record`` is ``uns["scvi_integration"]`` with ``scanvi``, ``model`` and
    ``corrected_expression`` records added when those steps ran.
    """
    from ._workflow import integrate

    check(adata, spec, spell=spell, quote=quote)
    if say is not None:
        n_batches = adata.obs[spec.batch_key].nunique()
        say(
            f"Integrating {adata.n_obs} cells x {adata.n_vars} genes over {n_batches} batches of {spec.batch_key!r}"
        )

    def train_kwargs(name: str) -> dict[str, Any]:
        kw = dict(spec.train_kwargs)
        if callbacks is not None:
            kw["callbacks"] = [*kw.get("callbacks", []), *callbacks(name)]
        return kw

    optional = {} if spec.preset is None else {"preset": spec.preset}
    if spec.genes is not None:
        optional["genes"] = list(spec.genes)
    if spec.corrected_genes:  # genes asked for that are not highly variable are trained on too
        optional["extra_genes"] = list(spec.corrected_genes)
    adata, model = integrate(
        adata,
        spec.batch_key,
        labels_key=spec.labels_key,
        categorical_covariate_keys=spec.categorical_covariate_keys or None,
        continuous_covariate_keys=spec.continuous_covariate_keys or None,
        layer=spec.layer,
        n_top_genes=spec.n_top_genes,
        n_latent=spec.n_latent,
        max_epochs=spec.max_epochs,
        seed=spec.seed,
        accelerator=spec.accelerator,
        devices=spec.devices,
        progress=progress,
        model_kwargs=dict(spec.model_kwargs) or None,
        train_kwargs=train_kwargs("scVI"),
        return_model=True,
        **optional,
    )
    if (strategy := spec.train_kwargs.get("strategy")) is not None:
        adata.uns[conv.UNS_INTEGRATION]["params"]["strategy"] = str(strategy)
    # the model options asked for (scvi-tools' defaults for the others), e.g. {"n_layers": 2}
    adata.uns[conv.UNS_INTEGRATION]["model_kwargs"] = {
        k: v for k, v in spec.model_kwargs.items() if isinstance(v, str | int | float | bool)
    }
    record = dict(adata.uns[conv.UNS_INTEGRATION])
    added: list[str] = []
    if spec.scanvi:
        from ._scanvi import train_scanvi

        adata, model = train_scanvi(
            adata,
            model,
            labels_key=spec.labels_key,
            unlabeled_category=spec.unlabeled_category,
            max_epochs=spec.scanvi_epochs,
            seed=spec.seed,
            accelerator=spec.accelerator,
            devices=spec.devices,
            progress=progress,
            train_kwargs=train_kwargs("scANVI"),
        )
        rec = adata.uns[conv.UNS_SCANVI]
        record["scanvi"] = dict(rec)
        added.append(
            f"scANVI trained {rec['epochs_run']} epochs on {rec['n_labelled']:,} labelled cells "
            f"({len(rec['classes'])} classes); added .obsm['X_scANVI'], .obs['scanvi_prediction'], "
            f".obs['scanvi_probability']; the predictions agree with "
            f"{100 * rec['labelled_agreement']:.1f}% of the known labels."
        )
    expression = None
    if spec.corrected_genes is not None:
        from ._expression import corrected_expression

        try:
            corrected_expression(
                adata, model, genes=spec.corrected_genes, transform_batch=spec.transform_batch
            )
        except OptionError:
            raise
        except PyscvibridgeError as e:
            option = "transform_batch" if str(e).startswith("transform_batch") else "corrected_genes"
            raise OptionError(str(e), option) from e
        expression = conv.NORMALIZED
        record["corrected_expression"] = dict(adata.uns[expression])
        as_batch = "" if spec.transform_batch is None else f" (decoded as batch {spec.transform_batch!r})"
        added.append(
            f"Added the batch-corrected normalised expression of {len(spec.corrected_genes)} genes"
            f"{as_batch} in .obsm[{expression!r}]."
        )
    if spec.save_model is not None:
        from ._query import save_model

        path = save_model(adata, model, spec.save_model, overwrite=spec.overwrite_model)
        record["model"] = dict(adata.uns[conv.UNS_MODEL])
        added.append(
            f"Saved the {type(model).__name__} model to {path} (recorded in .uns[{conv.UNS_MODEL!r}])."
        )
        if say is not None:
            say(f"Saved the {type(model).__name__} model to {path}")
    return Result(adata=adata, model=model, record=record, added=added, expression=expression)
