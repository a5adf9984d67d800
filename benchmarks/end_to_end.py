"""The whole job a user runs, timed: ``pyscvibridge integrate`` on CellBench, each run a fresh process.

Runs the CLI as a user does (``integrate cellbench.h5ad --metrics --plots``: integration, UMAPs,
Harmony + scib-metrics, plots, a gzip .h5ad) once per arm, every arm in its own process so that each
pays the imports and JIT compilation a user's run pays. Arms, in the order they run:

- ``fast-first``: the default preset with empty numba and JAX caches (a new environment);
- ``fast-rerun``: the default preset again, with the caches the first run wrote;
- ``fast-nocache``: the default preset, ``PYSCVIBRIDGE_JIT_CACHE=0`` (as before the cache);
- ``scvi-tools``: ``--preset scvi-tools``, ``PYSCVIBRIDGE_JIT_CACHE=0``: scvi-tools' defaults with
  nothing of ours cached (the seed's workflow; the baseline of the ratios, always run).

Every arm gets the same ``NUMBA_CACHE_DIR`` and ``PYSCVIBRIDGE_CACHE`` under a temporary directory;
the first-run arm empties them, so the arms after it find the caches that numba keeps for the
libraries that ask for one (scanpy, pynndescent), as on a machine that has run the tools before.
torch threads are the machine's default unless ``--threads`` sets ``OMP_NUM_THREADS`` for every arm.
Printed per arm: wall time of the whole command, CPU time and peak resident memory (the child's own
``wait4`` rusage), integrate()'s own seconds and the training seconds it recorded, epochs, scib
total; ratios = the baseline's time / the arm's, for the whole command and for integrate().

Usage::

    .venv/bin/python benchmarks/end_to_end.py [--repeats 1] [--threads 1] [--arms fast-rerun ...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "pyscvibridge" / "datasets" / "cellbench.h5ad"
#: name -> (extra CLI options, JIT cache on, empty the caches first)
ARMS = {
    "fast-first": ([], True, True),
    "fast-rerun": ([], True, False),
    "fast-nocache": ([], False, False),
    "scvi-tools": (["--preset", "scvi-tools"], False, False),
}
BASELINE = "scvi-tools"


def run_arm(name: str, work: Path, threads: int | None) -> dict:
    options, jit_cache, cold = ARMS[name]
    caches = work / "caches"
    if cold:
        shutil.rmtree(caches, ignore_errors=True)
    (caches / "numba").mkdir(parents=True, exist_ok=True)
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env |= {
        "NUMBA_CACHE_DIR": str(caches / "numba"),
        "PYSCVIBRIDGE_CACHE": str(caches / "pyscvibridge"),
        "PYSCVIBRIDGE_JIT_CACHE": "" if jit_cache else "0",
    }
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [
        str(Path(sys.executable).with_name("pyscvibridge")), "-q", "integrate", str(DATA),
        "-o", str(out / "integrated.h5ad"), "--batch-key", "batch", "--labels-key", "cell_line",
        "--metrics", "--plots", str(out), *options,
    ]  # fmt: skip
    log = work / f"{out.name}.log"
    with log.open("w") as fh:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{name}: the command failed:\n{' '.join(cmd)}\n{log.read_text()[-3000:]}")
    import anndata as ad
    import pandas as pd

    adata = ad.read_h5ad(out / "integrated.h5ad", backed="r")
    record = adata.uns["scvi_integration"]
    total = pd.read_csv(out / "metrics.csv", index_col=0).loc["scVI", "Total"]
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "integrate": float(record["seconds"]),
        "training": float(record["training"]["train_seconds"]),
        "epochs": int(record["epochs_run"]),
        "total": float(total),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--repeats", type=int, default=1, help="runs of every arm, interleaved")
    parser.add_argument(
        "--threads", type=int, help="OMP_NUM_THREADS (torch's threads) for every arm [default: unset]"
    )
    parser.add_argument("--keep", type=Path, help="work here and keep the outputs (default: a temp dir)")
    args = parser.parse_args()
    args.arms = [arm for arm in ARMS if arm in {*args.arms, BASELINE}]
    work = args.keep or Path(tempfile.mkdtemp(prefix="pysb-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict]] = {arm: [] for arm in args.arms}
    for repeat in range(args.repeats):
        for arm in args.arms:
            print(f"# repeat {repeat + 1}, {arm} ...", file=sys.stderr, flush=True)
            results[arm].append(run_arm(arm, work, args.threads))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)

    threads = f"OMP_NUM_THREADS={args.threads}" if args.threads else "default threads"
    print(f"\nCellBench ({DATA.name}), `pyscvibridge integrate --metrics --plots`, {threads}")
    print("| arm | run | whole command (s) | CPU (s) | peak RSS (MB) | integrate() (s) | training (s) "
          "| epochs | scib total | ratio vs baseline: whole command | integrate() |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for repeat in range(args.repeats):
        base = results[BASELINE][repeat]
        for arm in [BASELINE, *(a for a in args.arms if a != BASELINE)]:
            r = results[arm][repeat]
            print(
                f"| {arm} | {repeat + 1} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['rss_mb']:.0f} "
                f"| {r['integrate']:.1f} | {r['training']:.1f} | {r['epochs']} | {r['total']:.3f} "
                f"| {base['wall'] / r['wall']:.2f}x | {base['integrate'] / r['integrate']:.2f}x |"
            )


if __name__ == "__main__":
    main()
