"""Headline value of a reproduced cell: the official pooled CV mean, its bootstrap CI, and the fold spread.

Official evaluation (MedNeXt's nnU-Net v1 evaluation, docs/sources.md#cv-mean): pool the validation
cases of all folds, take the nanmean of each region over them, then average the regions. Beside it
the spread over folds: mean ± sample std of the per-fold values (each fold: the same estimator on that
fold's cases), as the tables showed before. The two differ when folds hold unequal numbers of
non-finite values (a region absent from some cases) or unequal numbers of cases.

Every value follows the dataset's headline empty-region convention (:meth:`CaseMatrix.scored`); where
the registry lists a second convention (BraTS21: headline NaN counted as 1, as the official BraTS
script reads; NaN skipped beside it), ``reproduced_other`` is the pooled mean under that one.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from mednext.statistics.bootstrap import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    bootstrap_samples_many,
    percentile_ci,
    pooled_region_mean,
)
from mednext.statistics.cases import CaseMatrix, case_matrices, dataset_conventions

HEADLINE_COLUMNS = ["dataset", "network", "metric", "reproduced", "ci_low", "ci_high", "fold_mean", "fold_std",
                    "folds_done", "n_cases", "convention", "other_convention", "reproduced_other"]


def pooled_mean(matrix: CaseMatrix) -> float:
    """The official pooled cross-validation mean over all cases of ``matrix``, under its convention."""
    return float(pooled_region_mean(np.ones((1, matrix.n_cases)), matrix.scored())[0])


def fold_values(matrix: CaseMatrix) -> pd.Series:
    """Per fold: the same estimator on that fold's cases only (index: fold label)."""
    labels = sorted(set(matrix.folds.tolist()))
    weights = np.stack([(matrix.folds == f).astype(np.float64) for f in labels])
    return pd.Series(pooled_region_mean(weights, matrix.scored()), index=labels, dtype=np.float64)


def _row(matrix: CaseMatrix, ci: tuple[float, float]) -> dict[str, object]:
    folds = fold_values(matrix)
    finite = folds[np.isfinite(folds)]
    others = [c for c in dataset_conventions(matrix.dataset) if c != matrix.convention][:1]
    return {
        "dataset": matrix.dataset, "network": matrix.network, "metric": matrix.metric,
        "reproduced": pooled_mean(matrix), "ci_low": ci[0], "ci_high": ci[1],
        "fold_mean": float(finite.mean()) if len(finite) else np.nan,
        "fold_std": float(finite.std(ddof=1)) if len(finite) > 1 else np.nan,
        "folds_done": int(len(finite)), "n_cases": matrix.n_cases, "convention": matrix.convention,
        "other_convention": others[0] if others else "",
        "reproduced_other": pooled_mean(matrix.under(others[0])) if others else np.nan,
    }


def headline(matrix: CaseMatrix, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict[str, object]:
    """One row: pooled mean, its fold-stratified 95 % bootstrap CI, fold mean ± std, folds, cases."""
    return headlines([matrix], n_resamples, seed).iloc[0].to_dict()


def headlines(matrices: Iterable[CaseMatrix], n_resamples: int = DEFAULT_RESAMPLES,
              seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """:func:`headline` of many run sets; those on the same cases share one pass over the bootstrap
    weights (vectorised across networks and metrics). ``n_resamples=0``: no CI."""
    matrices = list(matrices)
    cis: dict[int, tuple[float, float]] = {}
    layouts: dict[tuple, list[int]] = {}
    for index, matrix in enumerate(matrices):
        layouts.setdefault((matrix.cases, tuple(matrix.folds)), []).append(index)
    for members in layouts.values():
        if n_resamples <= 0:
            cis.update({i: (np.nan, np.nan) for i in members})
            continue
        first = matrices[members[0]]
        samples = bootstrap_samples_many([matrices[i].scored() for i in members], first.fold_sizes(), n_resamples, seed)
        cis.update({i: percentile_ci(s) for i, s in zip(members, samples)})
    return pd.DataFrame([_row(m, cis[i]) for i, m in enumerate(matrices)], columns=HEADLINE_COLUMNS)


def headline_table(results: pd.DataFrame | None, metrics: tuple[str, ...], spacing_mode: str,
                   n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """:func:`headlines` for every (dataset, network) in the tidy per-case ``results``, per metric."""
    if results is None or not len(results):
        return pd.DataFrame(columns=HEADLINE_COLUMNS)
    matrices = [m for metric in metrics for m in case_matrices(results, metric, spacing_mode).values()]
    return headlines(matrices, n_resamples, seed)
