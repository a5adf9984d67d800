"""Bad input to read_rds / from_r: each a PyscvibridgeError that says what is wrong."""

from __future__ import annotations

import pytest

from pyscvibridge import PyscvibridgeError
from pyscvibridge.convert import from_r, read_rds

pytestmark = pytest.mark.r


def test_rds_of_another_class_says_what_it_holds(r, tmp_path):
    path = tmp_path / "iris.rds"
    r(f"saveRDS(iris, {str(path)!r})")
    with pytest.raises(
        PyscvibridgeError, match=r"neither a Seurat object nor a SingleCellExperiment.*'data.frame'"
    ):
        read_rds(path)


def test_truncated_rds(tmp_path, v5_joined_path):
    data = v5_joined_path.read_bytes()
    path = tmp_path / "cut.rds"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(PyscvibridgeError, match=r"truncated, corrupt or not an \.rds file"):
        read_rds(path)


def test_not_an_rds_and_missing_and_empty(tmp_path):
    text = tmp_path / "notes.rds"
    text.write_text("hello, this is not R data\n")
    with pytest.raises(PyscvibridgeError, match=r"truncated, corrupt or not an \.rds file"):
        read_rds(text)
    with pytest.raises(PyscvibridgeError, match="no such file"):
        read_rds(tmp_path / "nope.rds")
    empty = tmp_path / "empty.rds"
    empty.write_bytes(b"")
    with pytest.raises(PyscvibridgeError, match="is empty"):
        read_rds(empty)


def test_duplicated_cell_names_in_an_assay(r):
    obj = r(
        """
        suppressMessages(library(SeuratObject))
        m <- Matrix::Matrix(matrix(rpois(60, 3), 6, 10, dimnames = list(paste0("g", 1:6), paste0("c", 1:10))),
                            sparse = TRUE)
        o <- CreateSeuratObject(m)
        colnames(o@assays$RNA@counts)[2] <- "c1"
        o
        """
    )
    with pytest.raises(PyscvibridgeError, match=r"duplicated cell names \(e.g. \['c1'\]\)"):
        from_r(obj)


def test_not_an_r_object():
    with pytest.raises(PyscvibridgeError, match="expected an R object"):
        from_r("pbmc.rds")
