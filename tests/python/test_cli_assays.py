"""Multi-assay objects (--assay, the gene-expression check) and the split as the default --batch-key.

The check itself (``pyscvibridge._assays``) is tested on AnnData with a conversion record; the CLI
and the R door on a Seurat object built here in R: the CellBench fixture (an Assay5 ``RNA``, 2,000
genes x 400 cells) with a 30-feature ``ADT`` assay added and made the active one, as after CITE-seq.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

from pyscvibridge import _conventions as conv
from pyscvibridge._assays import assay_problem, other_modality
from pyscvibridge._pipeline import OptionError, Spec, check
from pyscvibridge.cli import cli

# ---------------------------------------------------------------- the check, on conversion records


def _adata(n_vars: int, details: dict) -> ad.AnnData:
    rng = np.random.default_rng(0)
    adata = ad.AnnData(
        sp.csr_matrix(rng.poisson(1.0, size=(40, n_vars)).astype(np.float32)),
        obs=pd.DataFrame({"batch": pd.Categorical(["a", "b"] * 20)}, index=[f"c{i}" for i in range(40)]),
    )
    adata.var_names = [f"g{i}" for i in range(n_vars)]
    adata.uns[conv.UNS_CONVERSION] = {"direction": "R -> AnnData", "source": "Seurat", "details": details}
    return adata


def _table(**sizes) -> dict:
    return {
        name: {"class": "Assay", "n_features": n, "n_cells": 40, "layers": ["counts", "data"]}
        for name, n in sizes.items()
    }


CITE = {
    "assay": "ADT",
    "assay_class": "Assay",
    "active_assay": "ADT",
    "assay_table": _table(RNA=2000, ADT=30),
}


def test_adt_active_is_refused_naming_the_assays_and_the_option():
    msg = assay_problem(_adata(30, CITE), 2000, option="--assay", n_top_option="--n-top-genes")
    assert msg is not None
    assert msg.startswith("assay 'ADT' does not look like gene expression")
    assert "its name is that of another modality" in msg
    assert "30 features, far fewer than --n-top-genes 2,000" in msg
    assert "RNA (2,000 features x 40 cells)" in msg
    assert "ADT (30 features x 40 cells, active)" in msg
    assert msg.endswith("Pick the gene-expression assay: --assay RNA.")


def test_r_spelling_of_the_fix():
    from pyscvibridge._r_door._handoff import r_quote

    msg = assay_problem(_adata(30, CITE), 2000, option="assay", n_top_option="n_top_genes", quote=r_quote)
    assert msg.startswith('assay "ADT" does not look like gene expression')
    assert msg.endswith('Pick the gene-expression assay: assay = "RNA".')


def test_rna_chosen_passes_and_a_lone_small_assay_passes():
    rna = dict(CITE, assay="RNA", assay_class="Assay")
    assert assay_problem(_adata(2000, rna), 2000) is None
    # pbmc_small: 230 genes, nothing bigger to pick; a 30-feature ADT next to it does not change that
    small = {"assay": "RNA", "active_assay": "RNA", "assay_table": _table(RNA=230, ADT=30)}
    assert assay_problem(_adata(230, small), 2000) is None


def test_few_features_with_a_bigger_assay_is_refused_whatever_the_name():
    details = {"assay": "tags", "active_assay": "tags", "assay_table": _table(RNA=2000, tags=30)}
    msg = assay_problem(_adata(30, details), 2000, option="--assay")
    assert msg is not None
    assert "its name" not in msg
    assert "30 features, far fewer than n_top_genes 2,000, while another assay has many more" in msg
    assert msg.endswith("--assay RNA.")
    # with few highly variable genes asked for, 30 features are not "far fewer"
    assert assay_problem(_adata(30, details), 100) is None


@pytest.mark.parametrize(
    ("name", "other"),
    [("ADT", True), ("adt_raw", True), ("HTO", True), ("ATAC", True), ("peaks", True), ("Protein", True)]
    + [("prot", True), ("Antibody Capture", True), ("chromvar", True), ("RNA", False), ("SCT", False)]
    + [("Spatial", False), ("integrated", False), ("adtlike", False), ("proteome_rna", False)],
)
def test_other_modality_names(name, other):
    assert other_modality(name) is other


def test_only_other_modalities_says_so():
    details = {"assay": "ADT", "active_assay": "ADT", "assay_table": _table(ADT=30, HTO=4)}
    msg = assay_problem(_adata(30, details), 2000, option="--assay")
    assert "None of them looks like gene expression" in msg
    assert "--assay" not in msg.split("Assays in this object")[1].split("None")[0]


def test_sce_main_experiment_with_a_bigger_alt_exp():
    details = {"assay": "counts", "assays": ["counts"], "alt_exps": {}}
    details["alt_exps"] = {"RNA": {"n_features": 2000, "n_cells": 40, "assays": ["counts"]}}
    adata = _adata(30, details)
    adata.uns[conv.UNS_CONVERSION]["source"] = "SingleCellExperiment"
    msg = assay_problem(adata, 2000, n_top_option="--n-top-genes")
    assert "main experiment does not look like gene expression" in msg
    assert "RNA (2,000 features x 40 cells)" in msg
    assert "swapAltExp(sce, 'RNA'" in msg
    assert (
        assay_problem(_adata(2000, dict(details, alt_exps={"ADT": dict(details["alt_exps"]["RNA"])})), 2000)
        is None
    )


def test_data_made_in_python_has_no_record_and_passes():
    adata = _adata(30, {})
    del adata.uns[conv.UNS_CONVERSION]
    assert assay_problem(adata, 2000) is None


def test_the_pipeline_check_refuses_before_training_naming_the_option():
    adata = _adata(30, CITE)
    with pytest.raises(OptionError, match=r"Pick the gene-expression assay: --assay RNA\.") as e:
        check(adata, Spec(batch_key="batch"), spell={"assay": "--assay", "n_top_genes": "--n-top-genes"})
    assert e.value.option == "assay"


def test_assay_option_is_for_rds(tmp_path):
    path = tmp_path / "x.h5ad"
    _adata(50, {}).write_h5ad(path)
    result = CliRunner().invoke(
        cli,
        ["integrate", str(path), "-o", str(tmp_path / "o.h5ad"), "--batch-key", "batch", "--assay", "RNA"],
    )
    assert result.exit_code != 0
    assert "Error: --assay is for .rds input" in result.output
    assert "Traceback" not in result.output


def test_no_split_and_no_batch_key_is_a_clear_error(tmp_path):
    path = tmp_path / "x.h5ad"
    _adata(50, {}).write_h5ad(path)
    result = CliRunner().invoke(cli, ["integrate", str(path), "-o", str(tmp_path / "o.h5ad")])
    assert result.exit_code == 2
    assert "--batch-key is required" in result.output
    assert "has no split layers" in result.output
    assert "columns: batch" in result.output
    assert not (tmp_path / "o.h5ad").exists()


def test_map_without_batch_key_or_split_is_a_clear_error(tmp_path):
    path = tmp_path / "q.h5ad"
    _adata(50, {}).write_h5ad(path)
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.pt").write_bytes(b"")  # never loaded: the error comes first
    args = ["map", str(path), "--model", str(model), "-o", str(tmp_path / "o.h5ad")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "--batch-key is required" in result.output
    assert "columns: batch" in result.output
    result = CliRunner().invoke(cli, [*args, "--batch-key", "batch", "--assay", "RNA"])
    assert result.exit_code != 0
    assert "Error: --assay is for .rds input" in result.output


# ---------------------------------------------------------------- a CITE-seq-like Seurat object, in R


@pytest.fixture(scope="module")
def cite_rds(tmp_path_factory, v5_joined_path):
    """CellBench (Assay5 RNA, 2,000 x 400) + a 30-feature ADT assay (v4 Assay), ADT active; an .rds."""
    import rpy2.robjects as ro

    path = tmp_path_factory.mktemp("cite") / "cite.rds"
    ro.r(
        f"""
        local({{
          suppressPackageStartupMessages(library(SeuratObject))
          o <- readRDS("{v5_joined_path}")
          cells <- rownames(o@meta.data)
          set.seed(1)
          m <- matrix(rpois(30 * length(cells), 20), 30, dimnames = list(paste0("CD", 1:30), cells))
          adt <- CreateAssayObject(counts = m)
          adt@key <- "adt_"
          o@assays$ADT <- adt
          o@active.assay <- "ADT"
          saveRDS(o, "{path}")
        }})
        """
    )
    return path


def _error_line(result) -> str:
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.slow
@pytest.mark.r
def test_inspect_lists_every_assay_with_size_layers_and_the_active_one(cite_rds):
    result = CliRunner().invoke(cli, ["inspect", str(cite_rds)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  assays (2; --assay picks one):" in lines
    rna = next(line for line in lines if line.strip().startswith("RNA "))
    adt = next(line for line in lines if line.strip().startswith("ADT "))
    assert "Assay5" in rna
    assert "2,000 features x 400 cells" in rna
    assert "layers: counts, data" in rna
    assert "active" not in rna
    assert "30 features x 400 cells" in adt
    assert "layers: counts, data" in adt
    assert adt.endswith("(active, shown below)")
    assert "  cells x genes: 400 x 30" in lines
    assert any(line.startswith("  warning: assay 'ADT' does not look like gene expression") for line in lines)

    result = CliRunner().invoke(cli, ["inspect", str(cite_rds), "--assay", "RNA"])
    assert result.exit_code == 0, result.output
    assert "  cells x genes: 400 x 2,000" in result.output
    assert "warning" not in result.output
    assert next(line for line in result.output.splitlines() if line.strip().startswith("RNA ")).endswith(
        "(shown below)"
    )


@pytest.mark.slow
@pytest.mark.r
def test_integrate_refuses_the_adt_assay_and_integrates_rna_with_assay(cite_rds, tmp_path):
    out = tmp_path / "o.h5ad"
    base = ["integrate", str(cite_rds), "-o", str(out), "--batch-key", "batch", "--max-epochs", "2"]
    line = _error_line(CliRunner().invoke(cli, base))
    assert line.startswith("Error: assay 'ADT' does not look like gene expression")
    assert "RNA (2,000 features x 400 cells)" in line
    assert line.endswith("--assay RNA.")
    assert not out.exists()

    line = _error_line(CliRunner().invoke(cli, [*base, "--assay", "prot"]))
    assert "--assay 'prot' is not an assay of" in line
    assert "RNA (2,000 features x 400 cells); ADT (30 features x 400 cells)" in line

    result = CliRunner().invoke(cli, [*base, "--assay", "RNA", "--n-top-genes", "500", "--seed", "0"])
    assert result.exit_code == 0, result.output
    adata = ad.read_h5ad(out)
    assert adata.shape == (400, 2000)
    assert adata.obsm["X_scVI"].shape == (400, conv.N_LATENT)
    assert adata.uns[conv.UNS_CONVERSION]["details"]["assay"] == "RNA"
    assert int(adata.uns[conv.UNS_INTEGRATION]["n_hvg"]) == 500
    assert "Integrated 400 cells x 2,000 genes" in result.output


@pytest.mark.slow
@pytest.mark.r
def test_an_h5ad_of_the_adt_assay_is_refused_with_how_to_convert_again(cite_rds, tmp_path):
    h5 = tmp_path / "adt.h5ad"
    result = CliRunner().invoke(cli, ["convert", str(cite_rds), str(h5)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["inspect", str(h5)])
    assert result.exit_code == 0, result.output
    assert "(active, shown below)" in result.output
    out = tmp_path / "o.h5ad"
    line = _error_line(
        CliRunner().invoke(cli, ["integrate", str(h5), "-o", str(out), "--batch-key", "batch"])
    )
    assert line.startswith("Error: assay 'ADT' does not look like gene expression")
    assert line.endswith(f"e.g. 'pyscvibridge convert {cite_rds} OUT.h5ad --assay NAME'.")
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.r
def test_run_scvi_door_refuses_the_adt_assay_in_r_spelling(r, cite_rds):
    from pyscvibridge import _r_door

    env = r(f'local({{e <- new.env(); e$object <- readRDS("{cite_rds}"); e}})')
    answer = _r_door.run_integrate(
        env, kind="seurat", assay=None, layer="counts", batch_key="batch", max_epochs=1, verbose=False
    )
    assert answer["ok"] is False
    assert answer["argument"] == "assay"
    assert answer["error"].startswith('assay "ADT" does not look like gene expression')
    assert answer["error"].endswith('Pick the gene-expression assay: assay = "RNA".')


@pytest.mark.slow
@pytest.mark.r
def test_split_object_defaults_the_batch_to_the_split_and_says_so(v5_split_path, v5_joined_path, tmp_path):
    out = tmp_path / "o.h5ad"
    args = ["integrate", str(v5_split_path), "-o", str(out), "--max-epochs", "2", "--n-top-genes", "500"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (
        "Batches: the 5 split layers of assay 'RNA' (obs column 'split_layer'); pass --batch-key to use "
        "another column." in result.output
    )
    assert "over 5 batches of 'split_layer'" in result.output
    adata = ad.read_h5ad(out)
    assert adata.uns[conv.UNS_INTEGRATION]["params"]["batch_key"] == "split_layer"
    assert list(adata.obs["split_layer"].cat.categories) == list(adata.obs["batch"].cat.categories)

    result = CliRunner().invoke(cli, ["integrate", str(v5_joined_path), "-o", str(tmp_path / "j.h5ad")])
    line = _error_line(result)
    assert "--batch-key is required" in line
    assert "has no split layers" in line
    assert "batch" in line
    assert not (tmp_path / "j.h5ad").exists()


@pytest.mark.slow
@pytest.mark.r
def test_inspect_lists_the_alt_exps_of_a_single_cell_experiment(r, tmp_path):
    path = tmp_path / "sce.rds"
    r(
        f"""
        local({{
          suppressPackageStartupMessages(library(SingleCellExperiment))
          set.seed(1)
          cells <- paste0("c", 1:50)
          counts <- matrix(rpois(200 * 50, 2), 200, dimnames = list(paste0("g", 1:200), cells))
          adt <- matrix(rpois(30 * 50, 20), 30, dimnames = list(paste0("CD", 1:30), cells))
          sce <- SingleCellExperiment(list(counts = counts, logcounts = log1p(counts)))
          altExp(sce, "ADT") <- SingleCellExperiment(list(counts = adt))
          saveRDS(sce, "{path}")
        }})
        """
    )
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  assays: counts, logcounts" in lines
    assert "    ADT: 30 features x 50 cells; assays: counts" in lines
    assert "warning" not in result.output

    line = _error_line(CliRunner().invoke(cli, ["inspect", str(path), "--assay", "ADT"]))
    assert "--assay is for Seurat objects" in line
    assert "swapAltExp()" in line
