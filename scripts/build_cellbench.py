"""Build the bundled CellBench dataset (pyscvibridge/datasets/cellbench.h5ad) from the source CSVs.

Usage: python scripts/build_cellbench.py SOURCE_DIR

SOURCE_DIR holds the CSVs of LuyiTian/sc_mixology (commit 7d00ffb0bd043467f365a9358d7312f294f13c9f,
data/csv/<stem>.count.csv.gz and <stem>.metadata.csv.gz; MIT). Names match the Seurat v5 fixtures
(batch levels, cell-line level order, cells named ``<batch>_<barcode>``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

# file stem -> (batch name, protocol)
BATCHES = {
    "sc_celseq2": ("CEL-seq2_3cl", "CEL-seq2"),
    "sc_dropseq": ("Drop-seq_3cl", "Drop-seq"),
    "sc_celseq2_5cl_p1": ("CEL-seq2_5cl_p1", "CEL-seq2"),
    "sc_celseq2_5cl_p2": ("CEL-seq2_5cl_p2", "CEL-seq2"),
    "sc_celseq2_5cl_p3": ("CEL-seq2_5cl_p3", "CEL-seq2"),
}
CELL_LINES = ["H2228", "H1975", "HCC827", "A549", "H838"]


def build(source: Path) -> ad.AnnData:
    counts, metas = [], []
    for stem, (batch, protocol) in BATCHES.items():
        c = pd.read_csv(source / f"{stem}.count.csv.gz", index_col=0)
        m = pd.read_csv(source / f"{stem}.metadata.csv.gz", index_col=0)
        m = m.loc[c.columns]
        names = [f"{batch}_{cell}" for cell in c.columns]
        c.columns = names
        counts.append(c)
        metas.append(
            pd.DataFrame(
                {
                    "batch": batch,
                    "protocol": protocol,
                    "cell_line": m["cell_line_demuxlet"].to_numpy(),
                    "demuxlet_cls": m["demuxlet_cls"].to_numpy(),
                    "total_count_per_cell": m["total_count_per_cell"].astype(np.int64).to_numpy(),
                    "outlier": m["outliers"].astype(str).str.upper().eq("TRUE").to_numpy(),
                },
                index=names,
            )
        )
    genes = counts[0].index
    for c in counts[1:]:
        genes = genes.intersection(c.index, sort=False)
    x = sp.csr_matrix(pd.concat([c.loc[genes] for c in counts], axis=1).to_numpy(np.float32).T)
    obs = pd.concat(metas)
    obs["batch"] = pd.Categorical(obs["batch"], categories=[b for b, _ in BATCHES.values()])
    obs["protocol"] = pd.Categorical(obs["protocol"], categories=["CEL-seq2", "Drop-seq"])
    obs["cell_line"] = pd.Categorical(obs["cell_line"], categories=CELL_LINES)
    obs["demuxlet_cls"] = pd.Categorical(obs["demuxlet_cls"])
    var = pd.DataFrame({"feature_types": "Gene Expression"}, index=pd.Index(genes, name=None))
    adata = ad.AnnData(X=x, obs=obs, var=var)
    adata.uns["dataset"] = {
        "name": "CellBench cell-line mixtures",
        "source": "https://github.com/LuyiTian/sc_mixology (data/csv, commit 7d00ffb0bd043467f365a9358d7312f294f13c9f)",
        "citation": "Tian L. et al. (2019) Nature Methods 16, 479-487",
        "license": "MIT",
        "batch_key": "batch",
        "labels_key": "cell_line",
    }
    return adata


def main() -> None:
    source = Path(sys.argv[1])
    out = Path(__file__).resolve().parents[1] / "pyscvibridge" / "datasets" / "cellbench.h5ad"
    adata = build(source)
    adata.write_h5ad(out, compression="gzip", compression_opts=9)
    print(f"wrote {out}: {adata.n_obs} cells x {adata.n_vars} genes, {out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
