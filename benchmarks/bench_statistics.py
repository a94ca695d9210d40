"""Benchmark: every bootstrap CI and paired test of the paper grid, on a synthetic grid of its size.

Grid as ``config/paper.yaml``: 4 datasets x 15 networks x 5 folds plus 3 ablations x 2 datasets x
5 folds = 330 runs; validation cases per network summed over the datasets: BTCV 30 + AMOS22 200 +
KiTS19 210 + BraTS21 1251 = 1,691; regions as the registry (13, 15, 2 + composite, 3). Values are
random DSC/SDC fractions with some absent regions (NaN). Times, with 10,000 resamples: building the
per-case matrices from the tidy frame, the headline CI of every (dataset, network, metric) cell,
and every paired comparison (bootstrap CI + Wilcoxon + Holm). Target: < 60 s on 2 cores.

Usage: ``python benchmarks/bench_statistics.py [--resamples N] [--seed N]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from mednext.data.registry import get_dataset
from mednext.statistics.aggregate import headlines
from mednext.statistics.cases import case_matrices
from mednext.statistics.comparisons import comparisons_for
from mednext.statistics.paired import significance_table

CASES = {"btcv": 30, "amos22": 200, "kits19": 210, "brats21": 1251}
NETWORKS = ["nnUNet", "UNETR", "TransUNet", "TransBTS", "nnFormer", "SwinUNETR", "3D-UX-Net",
            *(f"MedNeXt-{v}_k{k}" for k in (3, 5) for v in ("S", "B", "M", "L"))]
ABLATIONS = ["MedNeXt-B_k3_standard_resampling", "MedNeXt-B_k5_scratch", "MedNeXt-B_k3_twice"]
FOLDS = 5


def synthetic_grid(seed: int) -> pd.DataFrame:
    """Tidy per-case rows (paper spacing mode) for the whole grid."""
    rng = np.random.default_rng(seed)
    frames = []
    for dataset, n_cases in CASES.items():
        regions = [r.name for r in get_dataset(dataset).regions]
        networks = NETWORKS + (ABLATIONS if dataset in ("btcv", "amos22") else [])
        cases = np.array([f"{dataset}_{i:04d}" for i in range(n_cases)])
        folds = np.arange(n_cases) % FOLDS
        difficulty = rng.uniform(0.6, 0.95, size=(n_cases, len(regions)))
        absent = rng.random((n_cases, len(regions))) < 0.03
        for network in networks:
            for metric in ("dsc", "sdc"):
                values = np.clip(difficulty + rng.normal(0, 0.04, size=difficulty.shape), 0, 1)
                values[absent] = np.nan
                frames.append(pd.DataFrame({
                    "dataset": dataset, "network": network, "fold": np.repeat(folds.astype(str), len(regions)),
                    "case": np.repeat(cases, len(regions)), "class": np.tile(regions, n_cases), "metric": metric,
                    "spacing_mode": "paper", "value": values.ravel(), "tolerance_mm": 1.0}))
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frame = synthetic_grid(args.seed)
    runs = frame.groupby(["dataset", "network"]).ngroups * FOLDS
    per_network = sum(CASES.values())
    print(f"grid: {runs} runs, {per_network} validation cases per network over the datasets, "
          f"{len(frame):,} tidy rows, {args.resamples} resamples")

    start = time.perf_counter()
    comparisons = comparisons_for([(d, n) for d in CASES for n in NETWORKS + ABLATIONS], CASES)
    registry = time.perf_counter()
    print(f"comparison list (network registry, plugins loaded once): {registry - start:.1f} s")
    start = time.perf_counter()
    matrices = {(d, n, metric): m for metric in ("dsc", "sdc") for (d, n), m in case_matrices(frame, metric, "paper").items()}
    built = time.perf_counter()
    rows = headlines(matrices.values(), args.resamples, args.seed)
    cis = time.perf_counter()
    comparisons = comparisons_for(sorted({(d, n) for d, n, _ in matrices}), CASES)
    table = significance_table(matrices, comparisons, ("dsc", "sdc"), args.resamples, args.seed)
    tests = time.perf_counter()
    print(f"per-case matrices:                 {built - start:6.1f} s ({len(matrices)} run sets)")
    print(f"headline CIs:                      {cis - built:6.1f} s ({len(rows)} cells)")
    print(f"paired comparisons (CI + Wilcoxon): {tests - cis:6.1f} s ({len(table)} rows)")
    print(f"all CIs and tests:                 {tests - built:6.1f} s (target < 60 s on 2 cores)")


if __name__ == "__main__":
    main()
