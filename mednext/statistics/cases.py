"""Per-case matrices out of tidy per-case results (``mednext.evaluation.results`` rows).

A :class:`CaseMatrix` holds one run set (dataset, network, metric, spacing mode) as cases x regions,
with the fold of each case. Only regions counted in the dataset's mean over classes
(``Region.in_mean``, e.g. without the KiTS19 kidney+tumor composite) are kept; values are in percent
for DSC and SDC, as the paper's tables. Non-finite values (NaN: region absent from both masks;
inf: HD95 with an empty mask) stay in the matrix; every estimator skips them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mednext.data.registry import regions_outside_mean
from mednext.evaluation.results import MEAN_CLASS
from mednext.vocabulary import metric as metric_named
from mednext.vocabulary import tidy_key


@dataclass(frozen=True)
class CaseMatrix:
    """Cases (sorted by fold, then case id) x regions of one (dataset, network, metric, spacing mode)."""

    dataset: str
    network: str
    metric: str
    cases: tuple[str, ...]
    folds: np.ndarray  # (n_cases,) fold label per case, str
    regions: tuple[str, ...]
    values: np.ndarray  # (n_cases, n_regions) float64

    @property
    def n_cases(self) -> int:
        return len(self.cases)

    def fold_sizes(self) -> tuple[int, ...]:
        """Cases per fold, in the (sorted) fold order of the rows."""
        _, counts = np.unique(self.folds, return_counts=True)
        return tuple(int(c) for c in counts)

    def case_means(self) -> np.ndarray:
        """Per case: mean over the regions with a finite value (NaN when none); the paired unit."""
        finite = np.isfinite(self.values)
        counts = finite.sum(axis=1)
        sums = np.where(finite, self.values, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def select(results: pd.DataFrame, metric: str, spacing_mode: str) -> pd.DataFrame:
    """Rows of one metric and spacing mode, per-case regions only (no summary rows)."""
    rows = results[(results["metric"] == metric) & (results["spacing_mode"] == spacing_mode)]
    return rows[rows["class"] != MEAN_CLASS]


def case_matrices(results: pd.DataFrame, metric: str, spacing_mode: str) -> dict[tuple[str, str], CaseMatrix]:
    """One :class:`CaseMatrix` per (dataset, network) present in ``results`` for this metric and mode."""
    rows = select(results, metric, spacing_mode)
    matrices: dict[tuple[str, str], CaseMatrix] = {}
    for (dataset, network), group in rows.groupby(["dataset", "network"], sort=True):
        matrices[(str(dataset), str(network))] = _matrix(group, str(dataset), str(network), metric)
    return matrices


def _matrix(group: pd.DataFrame, dataset: str, network: str, metric: str) -> CaseMatrix:
    outside = regions_outside_mean(dataset)
    group = group[~group["class"].isin(outside)]
    duplicated = group.duplicated(["fold", "case", "class"])
    if duplicated.any():
        first = group[duplicated].iloc[0]
        raise ValueError(f"{dataset}/{network} {metric}: case {first['case']!r} region {first['class']!r} "
                         f"appears more than once in fold {first['fold']}")
    wide = group.pivot(index=["fold", "case"], columns="class", values="value").sort_index()
    values = wide.to_numpy(dtype=np.float64)
    if tidy_key(metric) is not None:
        values = values * metric_named(metric).scale()
    folds = np.asarray([str(f) for f in wide.index.get_level_values("fold")])
    cases = tuple(str(c) for c in wide.index.get_level_values("case"))
    return CaseMatrix(dataset, network, metric, cases, folds, tuple(str(c) for c in wide.columns), values)
