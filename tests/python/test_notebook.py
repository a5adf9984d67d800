"""inst/examples' R + Python notebook, executed headlessly with nbclient on this Python's kernel."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.r]

NOTEBOOK = Path(__file__).resolve().parents[2] / "inst" / "examples" / "seurat_scvi_rpy2.ipynb"


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_notebook_runs_clean_and_shows_what_it_claims(tmp_path):
    import nbclient
    import nbformat
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpecManager

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert any(c.source.startswith("%%R") for c in nb.cells)
    assert any("%load_ext rpy2.ipython" in c.source for c in nb.cells)
    # The native kernel runs this interpreter (the virtual environment's, where pyscvibridge is):
    # jupyter_client starts a spec whose command is a bare 'python' with sys.executable.
    spec = KernelSpecManager().get_kernel_spec(NATIVE_KERNEL_NAME)
    assert spec.argv[0] in {"python", f"python{sys.version_info[0]}", sys.executable}

    client = nbclient.NotebookClient(
        nb, kernel_name=NATIVE_KERNEL_NAME, timeout=900, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on any failing cell

    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    text = "\n".join(_text(c) for c in code)
    # R made the object, Python integrated it, R reads the results back
    assert "1408 cells x 11533 genes" in text
    assert "X_scVI: (1408, 10)" in text
    epochs = int(re.search(r"epochs run: (\d+)", text).group(1))
    assert 1 <= epochs <= 20
    assert "scVI embedding: 1408 10" in " ".join(text.split())
    assert "batch key recorded in R: batch" in " ".join(text.split())
    images = [o for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the Python UMAP comparison and R's DimPlot
