"""Per-case matrices out of tidy per-case results (``mednext.evaluation.results`` rows).

A :class:`CaseMatrix` holds one run set (dataset, network, metric, spacing mode) as cases x regions,
with the fold of each case. Only regions counted in the dataset's mean over classes
(``Region.in_mean``, e.g. without the KiTS19 kidney+tumor composite) are kept; values are in percent
for DSC and SDC, as the paper's tables. Non-finite values (NaN: region absent from both masks;
inf: HD95 with an empty mask) stay in ``values``. :meth:`CaseMatrix.scored` applies the matrix's
empty-region convention (:data:`mednext.vocabulary.CONVENTIONS`; the dataset's headline one by
default): under ``nan_is_1`` a NaN DSC or SDC counts as 100 %. Every estimator reads ``scored()`` and
skips what is still not finite the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from mednext.data.errors import UnknownDatasetError
from mednext.data.registry import get_dataset, regions_outside_mean
from mednext.evaluation.results import MEAN_CLASS
from mednext.vocabulary import NAN_IS_1, NAN_SKIPPED, convention, tidy_key
from mednext.vocabulary import metric as metric_named


def dataset_conventions(dataset: str) -> tuple[str, ...]:
    """The dataset's empty-region conventions, headline first (``nan_skipped`` for a dataset the registry lacks)."""
    try:
        return get_dataset(dataset).empty_region_conventions
    except UnknownDatasetError:
        return (NAN_SKIPPED,)


@dataclass(frozen=True)
class CaseMatrix:
    """Cases (sorted by fold, then case id) x regions of one (dataset, network, metric, spacing mode)."""

    dataset: str
    network: str
    metric: str
    cases: tuple[str, ...]
    folds: np.ndarray  # (n_cases,) fold label per case, str
    regions: tuple[str, ...]
    values: np.ndarray  # (n_cases, n_regions) float64, as scored (NaN: region absent from both masks)
    convention: str = NAN_SKIPPED

    @property
    def n_cases(self) -> int:
        return len(self.cases)

    def fold_sizes(self) -> tuple[int, ...]:
        """Cases per fold, in the (sorted) fold order of the rows."""
        _, counts = np.unique(self.folds, return_counts=True)
        return tuple(int(c) for c in counts)

    def scored(self) -> np.ndarray:
        """``values`` under :attr:`convention`: with ``nan_is_1`` a NaN becomes the metric's perfect score
        (metrics without one, e.g. HD95, keep NaN); ``nan_skipped`` leaves them for the estimators to skip."""
        convention(self.convention)  # an unknown name is an error, not a silent skip
        if self.convention != NAN_IS_1 or tidy_key(self.metric) is None:
            return self.values
        entry = metric_named(self.metric)
        if entry.score_when_both_empty is None:
            return self.values
        return np.where(np.isnan(self.values), entry.score_when_both_empty * entry.scale(), self.values)

    def under(self, other: str) -> CaseMatrix:
        """The same cases under another empty-region convention."""
        convention(other)
        return replace(self, convention=other)

    def case_means(self) -> np.ndarray:
        """Per case: mean over the regions with a finite score (NaN when none); the paired unit."""
        values = self.scored()
        finite = np.isfinite(values)
        counts = finite.sum(axis=1)
        sums = np.where(finite, values, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def select(results: pd.DataFrame, metric: str, spacing_mode: str) -> pd.DataFrame:
    """Rows of one metric and spacing mode, per-case regions only (no summary rows)."""
    rows = results[(results["metric"] == metric) & (results["spacing_mode"] == spacing_mode)]
    return rows[rows["class"] != MEAN_CLASS]


def case_matrices(results: pd.DataFrame, metric: str, spacing_mode: str) -> dict[tuple[str, str], CaseMatrix]:
    """One :class:`CaseMatrix` per (dataset, network) present in ``results`` for this metric and mode,
    under the dataset's headline empty-region convention."""
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
    scored = group.assign(row=1.0).pivot(index=["fold", "case"], columns="class", values="row").sort_index()
    if scored.isna().to_numpy().any():  # a missing row would pass for "absent from both masks"
        fold, case = scored.index[scored.isna().any(axis=1).to_numpy()][0]
        regions = [str(r) for r in scored.columns[scored.loc[(fold, case)].isna().to_numpy()]]
        raise ValueError(f"{dataset}/{network} {metric}: case {case!r} of fold {fold} has no row for region(s) "
                         f"{regions}, which other cases have")
    values = wide.to_numpy(dtype=np.float64)
    if tidy_key(metric) is not None:
        values = values * metric_named(metric).scale()
    folds = np.asarray([str(f) for f in wide.index.get_level_values("fold")])
    cases = tuple(str(c) for c in wide.index.get_level_values("case"))
    return CaseMatrix(dataset, network, metric, cases, folds, tuple(str(c) for c in wide.columns), values,
                      dataset_conventions(dataset)[0])
