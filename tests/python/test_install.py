"""Installing outside this repository: the wheel and sdist, and the R-only path (R tarball -> install_pyscvibridge())."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION = re.search(r"(?m)^Version: (\S+)", (ROOT / "DESCRIPTION").read_text()).group(1)

pytestmark = [pytest.mark.slow]


def _run(cmd, *, env=None, cwd=None, timeout=900) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, (
        f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what points at the repository or its virtual environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYSCVIBRIDGE_PYTHON", "R_LIBS_USER", "VIRTUAL_ENV"}
    }
    env.update(extra)
    return env


def test_wheel_and_sdist_carry_the_console_script_and_the_bundled_data(tmp_path):
    _run([sys.executable, "-m", "build", "--outdir", str(tmp_path), str(ROOT)], timeout=300)
    wheel = tmp_path / f"pyscvibridge-{VERSION}-py3-none-any.whl"
    sdist = tmp_path / f"pyscvibridge-{VERSION}.tar.gz"
    assert wheel.is_file()
    assert sdist.is_file()
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = z.read(f"pyscvibridge-{VERSION}.dist-info/entry_points.txt").decode()
        metadata = z.read(f"pyscvibridge-{VERSION}.dist-info/METADATA").decode()
    assert "pyscvibridge/datasets/cellbench.h5ad" in names
    assert "pyscvibridge/convert/_helpers.R" in names
    assert "pyscvibridge/convert/_converter.py" in names
    assert "pyscvibridge = pyscvibridge.cli:main" in entry_points
    assert f"Version: {VERSION}" in metadata  # the R package's version (DESCRIPTION)
    assert not any(n.startswith(("tests/", "R/", "inst/")) for n in names)
    with tarfile.open(sdist) as t:
        snames = set(t.getnames())
    prefix = f"pyscvibridge-{VERSION}/"
    for member in [
        "DESCRIPTION",
        "pyproject.toml",
        "pyscvibridge/datasets/cellbench.h5ad",
        "pyscvibridge/cli/__init__.py",
    ]:
        assert prefix + member in snames
    assert not any("/.venv/" in n or n.endswith(".whl") for n in snames)


def test_the_wheel_installs_into_a_fresh_venv_and_runs_the_demo(tmp_path):
    """A fresh virtual environment (no system site-packages) with only the wheel installed into it;
    its dependencies come from this interpreter's site-packages through a .pth line (installing
    scvi-tools and its ~100 dependencies again is what the R-only test below does)."""
    _run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(ROOT)], timeout=300
    )
    wheel = tmp_path / "dist" / f"pyscvibridge-{VERSION}-py3-none-any.whl"
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    )
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = _clean_env()
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        env=env,
    )

    where = _run(
        [str(python), "-c", "import pyscvibridge; print(pyscvibridge.__file__)"], env=env, cwd=tmp_path
    )
    assert where.stdout.strip().startswith(str(site)), where.stdout  # the wheel's copy, not the repository's
    script = venv / "bin" / "pyscvibridge"
    assert _run([str(script), "--version"], env=env, cwd=tmp_path).stdout.strip() == f"pyscvibridge {VERSION}"

    out = tmp_path / "demo"
    _run([str(script), "demo", "--max-epochs", "2", "--no-metrics", "--out", str(out)], env=env, cwd=tmp_path)
    import anndata as ad

    adata = ad.read_h5ad(out / "cellbench_integrated.h5ad")
    assert adata.n_obs == 1408
    assert adata.obsm["X_scVI"].shape == (1408, 10)
    assert adata.uns["scvi_integration"]["epochs_run"] == 2
    assert sorted(p.name for p in out.glob("*.png"))  # the plots were written


@pytest.mark.r
def test_r_only_path_tarball_empty_library_install_function_then_runscvi(tmp_path):
    """What a user without this repository does: R CMD INSTALL the tarball, install_pyscvibridge(),
    then RunScVI() in a new R session. torch 2.13.0 (CPU) is asked for by version: it resolves from
    this machine's local wheel; the rest comes from the package index, with pip's cache."""
    if shutil.which("R") is None:
        pytest.skip("R is not installed")
    times = {}
    t0 = time.perf_counter()
    out = tmp_path / "dist"
    _run(
        ["bash", str(ROOT / "scripts" / "build_r_package.sh"), str(out)],
        env=_clean_env(PYTHON=sys.executable),
        timeout=600,
    )
    tarball = out / f"pyscvibridge_{VERSION}.tar.gz"
    assert tarball.is_file()
    with tarfile.open(tarball) as t:
        assert f"pyscvibridge/inst/python/pyscvibridge-{VERSION}-py3-none-any.whl" in t.getnames()
    times["build"] = time.perf_counter() - t0

    lib = tmp_path / "Rlib"
    lib.mkdir()
    renv = _clean_env(R_LIBS_USER=str(lib), R_LIBS="", WORKON_HOME=str(tmp_path / "virtualenvs"))
    t0 = time.perf_counter()
    _run(["R", "CMD", "INSTALL", f"--library={lib}", str(tarball)], env=renv, cwd=tmp_path)
    times["R CMD INSTALL"] = time.perf_counter() - t0

    # before the set-up, RunScVI() says what to do
    before = (
        "tryCatch(pyscvibridge::RunScVI(SeuratObject::pbmc_small, batch_key = 'groups'), "
        "error = function(e) cat(conditionMessage(e)))"
    )
    text = " ".join(_run(["Rscript", "-e", before], env=renv, cwd=tmp_path).stdout.split())
    assert "No Python with the pyscvibridge Python package was found" in text
    assert "pyscvibridge::install_pyscvibridge()" in text

    t0 = time.perf_counter()
    install = (
        "library(pyscvibridge); stopifnot(startsWith(find.package('pyscvibridge'), .libPaths()[1])); "
        "install_pyscvibridge(torch = 'torch==2.13.0', torch_index = NULL); "
        "install_pyscvibridge(torch = 'torch==2.13.0', torch_index = NULL)"  # a second call only checks
    )
    proc = _run(["Rscript", "-e", install], env=renv, cwd=tmp_path, timeout=1500)
    times["install_pyscvibridge()"] = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    assert "Installing PyTorch" in log
    assert f"pyscvibridge {VERSION} is ready in" in log
    assert f"pyscvibridge {VERSION} is already installed in" in log
    env_python = tmp_path / "virtualenvs" / "pyscvibridge" / "bin" / "python"
    assert env_python.exists()

    t0 = time.perf_counter()
    run = (
        "library(pyscvibridge); "
        "o <- RunScVI(SeuratObject::pbmc_small, batch_key = 'groups', max_epochs = 2, verbose = FALSE); "
        "cat('python:', scvi_python(), '\\n'); "
        "cat('reductions:', names(o@reductions), '\\n'); "
        "cat('scVI:', dim(SeuratObject::Embeddings(o, 'scVI')), '\\n')"
    )
    proc = _run(["Rscript", "-e", run], env=renv, cwd=tmp_path, timeout=900)
    times["RunScVI()"] = time.perf_counter() - t0
    text = " ".join(proc.stdout.split())
    assert f"python: {env_python}" in text
    assert re.search(r"reductions: .*\bscVI umap\.scVI\b", text), text
    assert "scVI: 80 10" in text
    print("R-only path, seconds:", {k: round(v, 1) for k, v in times.items()})
