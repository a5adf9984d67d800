"""Paths, reading and writing files, and printing a conversion manifest (the CLI's file handling)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _conventions as conv
from .._atomic import atomic_path, check_writable_dir
from .._errors import PyscvibridgeError

if TYPE_CHECKING:
    import anndata as ad

INPUT_SUFFIXES = (".rds", ".h5ad")
KINDS = ("Seurat", "SingleCellExperiment")


def input_path(path: Path, suffixes: tuple[str, ...] = INPUT_SUFFIXES) -> Path:
    if not path.exists():
        msg = f"No such file: {str(path)!r}."
        raise PyscvibridgeError(msg)
    if not path.is_file():
        msg = f"{str(path)!r} is not a file."
        raise PyscvibridgeError(msg)
    if path.suffix.lower() not in suffixes:
        msg = (
            f"Cannot tell the format of {str(path)!r} from its extension {path.suffix!r}: "
            f"expected {' or '.join(suffixes)}."
        )
        raise PyscvibridgeError(msg)
    if not os.access(path, os.R_OK):
        msg = f"Cannot read {str(path)!r}: permission denied."
        raise PyscvibridgeError(msg)
    return path


def output_path(path: Path, suffix: str, option: str, inputs: tuple[Path, ...] = ()) -> Path:
    if path.suffix.lower() != suffix:
        msg = f"{option} {str(path)!r} must end in {suffix}."
        raise PyscvibridgeError(msg)
    if path.is_dir():
        msg = f"{option} {str(path)!r} is a directory; give a file name ending in {suffix}."
        raise PyscvibridgeError(msg)
    for inp in inputs:
        if path.exists() and path.resolve() == inp.resolve():
            msg = f"{option} {str(path)!r} is the input file; choose another name so the input is kept."
            raise PyscvibridgeError(msg)
    check_writable_dir(path.parent, f"the directory of {option}")
    return path


def read(path: Path, *, assay: str | None = None, trust: bool = False) -> tuple[ad.AnnData, Any]:
    """Read an ``.h5ad`` (AnnData, None) or an ``.rds`` (AnnData, the rpy2 R object).

    ``assay``: a Seurat object's assay to convert (``--assay``; default the active one).
    """
    if assay is not None and path.suffix.lower() != ".rds":
        msg = f"--assay is for .rds input (a Seurat object's assays); {str(path)!r} is not one."
        raise PyscvibridgeError(msg)
    if path.suffix.lower() == ".h5ad":
        import anndata as ad

        try:
            return ad.read_h5ad(path), None
        except Exception as e:  # noqa: BLE001 - h5py/anndata raise many kinds for a bad file
            msg = f"Cannot read {str(path)!r} as an .h5ad file: {first_line(e)}"
            raise PyscvibridgeError(msg) from None
    from ..convert import from_r, read_r_object

    obj = read_r_object(path, trust=trust, trust_hint="--trust")
    if assay is not None:
        from .inspect import check_assay_option

        check_assay_option(obj, assay, path)
    try:
        adata = from_r(obj, assay=assay)
    except PyscvibridgeError as e:
        msg = f"{str(path)!r}: {e}"
        raise PyscvibridgeError(msg) from None
    adata.uns[conv.UNS_CONVERSION]["details"]["file"] = str(path)
    return adata, obj


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


#: Writes HDF5 failed (e.g. a full disk): h5py's objects of such a write crash the process when they
#: are freed (HDF5 cannot flush the file), so their exceptions are kept, and main() ends the process
#: without freeing them once the one-line error is out.
FAILED_H5_WRITES: list[BaseException] = []
#: R could not write (saveRDS): below this much free space the file system counts as full.
FULL_BYTES = 1 << 20


def write_h5ad(adata: ad.AnnData, path: Path) -> None:
    with atomic_path(path) as tmp:
        write_h5ad_to(adata, tmp, path)


def write_h5ad_to(adata: ad.AnnData, tmp: Path, path: Path) -> None:
    """Write ``adata`` to the temporary file ``tmp``; a failure is an OSError naming ``path``."""
    try:
        adata.write_h5ad(tmp, compression="gzip")
    except OSError as e:
        FAILED_H5_WRITES.append(e)
        code = e.errno or errno.EIO
        raise OSError(code, os.strerror(code), str(path)) from None


def save_rds(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        save_rds_to(obj, tmp, path)


def save_rds_to(obj, tmp: Path, path: Path) -> None:
    """saveRDS into the temporary file ``tmp``; a failure is an OSError naming ``path`` (ENOSPC when
    the file system is full: R says only "error writing to connection")."""
    from .. import convert

    try:
        convert.save_rds(obj, tmp)
    except PyscvibridgeError:
        raise
    except Exception as e:  # noqa: BLE001 - rpy2's RRuntimeError
        text = first_line(e)
    else:
        return
    try:
        st = os.statvfs(Path(tmp).parent)
        full = st.f_bavail * st.f_frsize < FULL_BYTES
    except OSError:
        full = False
    if full:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    raise OSError(errno.EIO, f"R could not write the file ({text})", str(path))


def rds_kind(adata: ad.AnnData, kind: str | None) -> str:
    if kind is not None:
        return kind
    source = str(dict(adata.uns.get(conv.UNS_CONVERSION, {})).get("source", ""))
    return source if source in KINDS else "Seurat"


def to_rds(adata: ad.AnnData, path: Path, kind: str) -> dict:
    from ..convert import to_r

    obj, manifest = to_r(adata, kind=kind, return_manifest=True)
    save_rds(obj, path)
    return manifest


def misc(adata: ad.AnnData) -> dict:
    """What goes into the R object's misc/metadata: the run's provenance."""
    prov = dict(adata.uns.get(conv.UNS_INTEGRATION, {}))
    return {
        k: prov[k] for k in ("params", "versions", "epochs_run", "history", "n_hvg", "seconds") if k in prov
    }


# ---------------------------------------------------------------- printing


def format_manifest(man: dict) -> str:
    lines = [f"Converted {man.get('source', '?')} ({man.get('direction', '?')})"]
    details = dict(man.get("details", {}))
    if details:
        lines.append("  details:")
        lines += [f"    {k}: {short(v)}" for k, v in details.items()]
    if man.get("mapped"):
        lines.append("  mapped:")
        lines += [f"    {dest} <- {src}" for dest, src in dict(man["mapped"]).items()]
    for what, pairs in dict(man.get("renamed", {})).items():
        pairs = dict(pairs)
        shown = ", ".join(f"{o!r} -> {n!r}" for o, n in list(pairs.items())[:5])
        more = f" (and {len(pairs) - 5} more)" if len(pairs) > 5 else ""
        lines.append(f"  renamed {len(pairs)} {what}: {shown}{more}")
    if man.get("dropped"):
        lines.append("  not converted:")
        lines += [f"    {what}: {why}" for what, why in dict(man["dropped"]).items()]
    notes = list(man.get("notes", []))
    if notes:
        lines.append("  notes:")
        lines += [f"    - {n}" for n in notes]
    return "\n".join(lines)


def short(v, n: int = 8) -> str:
    if isinstance(v, dict):
        v = [f"{k}={x}" for k, x in v.items()]
    if isinstance(v, list | tuple) or hasattr(v, "tolist"):
        v = list(v.tolist() if hasattr(v, "tolist") else v)
        more = f", ... ({len(v)} in all)" if len(v) > n else ""
        return ", ".join(map(str, v[:n])) + more
    return str(v)
