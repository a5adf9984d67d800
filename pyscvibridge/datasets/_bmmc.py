from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import PyscvibridgeError

if TYPE_CHECKING:
    import anndata as ad

logger = logging.getLogger(__name__)

BMMC_URL = "https://figshare.com/ndownloader/files/45452260"
BMMC_FILENAME = "openproblems_bmmc_multiome_genes_filtered.h5ad"
#: The batches the scVI integration tutorial (sc-best-practices) keeps.
BMMC_SUBSET_BATCHES = ("s1d3", "s2d1", "s3d7")


def cache_dir() -> Path:
    """Where downloads are kept: ``$PYSCVIBRIDGE_CACHE``, else ``$XDG_CACHE_HOME/pyscvibridge``."""
    if env := os.environ.get("PYSCVIBRIDGE_CACHE"):
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pyscvibridge"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(url: str, dest: Path, *, sha256: str | None = None, timeout: float = 60) -> Path:
    """Download ``url`` to ``dest`` once, atomically, and verify it.

    The file is streamed into a temporary file beside ``dest`` and renamed only once complete, so an
    interrupted download never leaves a partial file. Its SHA-256 is checked against ``sha256`` when
    given; otherwise the digest of the first download is recorded in ``<dest>.sha256`` and later
    calls check the cached file against it (a corrupted or swapped cache file is reported).
    """
    dest = Path(dest)
    pin = dest.with_name(dest.name + ".sha256")
    if dest.exists():
        expected = sha256 or (pin.read_text().strip() if pin.exists() else None)
        if expected is not None and (actual := _sha256(dest)) != expected:
            msg = (
                f"The cached file {str(dest)!r} is corrupt or not the expected one (sha256 {actual}, "
                f"expected {expected}). Delete it and call again to download it anew."
            )
            raise PyscvibridgeError(msg)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s to %s", url, dest)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out, length=1 << 20)
        actual = _sha256(tmp)
        if sha256 is not None and actual != sha256:
            msg = (
                f"The download from {url} has sha256 {actual}, expected {sha256}: the file changed "
                "upstream or the transfer was corrupted. Nothing was kept; try again, or check the URL."
            )
            raise PyscvibridgeError(msg)
        tmp.replace(dest)
        pin.write_text(actual + "\n")
    except (urllib.error.URLError, OSError) as e:
        msg = (
            f"Cannot download {url} ({e}). If this machine is offline, download the file on a machine "
            f"with internet access and place it by hand at {str(dest)!r} (or set PYSCVIBRIDGE_CACHE "
            "to the folder that holds it)."
        )
        raise PyscvibridgeError(msg) from e
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def openproblems_bmmc(
    *,
    subset: bool = True,
    url: str = BMMC_URL,
    sha256: str | None = None,
    cache: str | os.PathLike | None = None,
) -> ad.AnnData:
    """The NeurIPS 2021 BMMC multiome dataset used by the scVI integration tutorial (sc-best-practices).

    Downloaded once from figshare (about 1.3 GB) into ``cache`` (default :func:`cache_dir`) and
    verified (see :func:`fetch`). The file has 69,249 cells and 129,921 features (gene expression and
    ATAC), log-normalised values in ``X`` and raw counts in ``layers["counts"]``.

    Parameters
    ----------
    subset
        Apply the tutorial's subset: batches s1d3, s2d1, s3d7 and gene-expression features only.
    url, sha256
        Where to download from and the expected SHA-256 (checked when given).
    cache
        Folder for the download.
    """
    import anndata as ad

    path = fetch(url, Path(cache or cache_dir()) / BMMC_FILENAME, sha256=sha256)
    try:
        adata = ad.read_h5ad(path)
    except OSError as e:
        msg = f"{str(path)!r} is not a readable .h5ad file ({e}). Delete it and call again."
        raise PyscvibridgeError(msg) from e
    missing = [k for k in ("batch", "cell_type") if k not in adata.obs]
    if missing or "counts" not in adata.layers:
        msg = (
            f"{str(path)!r} is not the OpenProblems BMMC file (missing obs columns {missing} or "
            "layers['counts']). Delete it and call again."
        )
        raise PyscvibridgeError(msg)
    if subset:
        keep_cells = adata.obs["batch"].isin(BMMC_SUBSET_BATCHES).to_numpy()
        keep_genes = (
            (adata.var["feature_types"] == "GEX").to_numpy() if "feature_types" in adata.var else slice(None)
        )
        adata = adata[keep_cells, keep_genes].copy()
        adata.obs["batch"] = adata.obs["batch"].astype("category").cat.remove_unused_categories()
    return adata
