"""The evaluation half of the recipe card, read by running the project's evaluation and statistics code.

- ``eval_regions``: the label sets of the regions the tables average. A probe label map in which
  label ``v`` covers ``2**(v - 1)`` voxels is scored by :func:`mednext.evaluation.metrics.evaluate_label_maps`
  with the regions the workflow passes to ``evaluate`` (:func:`~mednext.evaluation.metrics.dataset_regions`);
  the ground-truth voxel count of a region spells out its labels in binary. Regions the per-case
  matrices leave out of the mean (the KiTS19 composite) are dropped as the tables drop them.
- ``cv_aggregation`` and ``empty_region_convention``: the tables' headline estimator
  (:func:`mednext.statistics.aggregate.headlines` on :func:`~mednext.statistics.cases.case_matrices`)
  run on two folds of unequal size in which one region is absent from both masks in one case. The
  four candidate estimators (pooled cases or mean of fold means; NaN skipped or counted as 1) give
  four different values there, so the result names the one the tables use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mednext.data.errors import UnknownDatasetError
from mednext.data.registry import get_dataset
from mednext.evaluation.metrics import dataset_regions, evaluate_label_maps
from mednext.evaluation.results import ROW_COLUMNS
from mednext.statistics.aggregate import headlines
from mednext.statistics.cases import case_matrices
from mednext.vocabulary import NAN_IS_1, NAN_SKIPPED

EVALUATION_ITEMS: tuple[str, ...] = ("eval_regions", "cv_aggregation", "empty_region_convention")
POOLED = "pooled cases"
FOLD_MEANS = "mean of fold means"


def _tidy(dataset: str, metric: str, rows: list[tuple[int, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame([[dataset, "probe", str(fold), case, region, metric, "paper", value, 1.0]
                         for fold, case, region, value in rows], columns=ROW_COLUMNS)


def evaluated_regions(dataset: str) -> list[list[int]]:
    """Sorted label sets of the regions the tables average for ``dataset``, as the evaluation scores them."""
    spec = get_dataset(dataset)
    n_labels = len(spec.labels) - 1
    probe = np.zeros(2 ** n_labels, dtype=np.uint8)
    start = 0
    for value in range(1, n_labels + 1):
        probe[start:start + 2 ** (value - 1)] = value
        start += 2 ** (value - 1)
    gt = probe.reshape(1, 1, -1)
    results = evaluate_label_maps(gt, np.zeros_like(gt), dataset_regions(spec.key), (1.0, 1.0, 1.0), ("paper",))
    frame = _tidy(spec.key, "gt_voxels", [(0, "probe", r.region, float(r.gt_voxels)) for r in results])
    (matrix,) = case_matrices(frame, "gt_voxels", "paper").values()
    counts = dict(zip(matrix.regions, matrix.values[0]))
    kept = [r.region for r in results if r.region in counts]
    return sorted([v for v in range(1, n_labels + 1) if int(counts[name]) >> (v - 1) & 1] for name in kept)


def headline_estimator(dataset: str) -> tuple[str, str]:
    """(aggregation, empty-region convention) of the tables' headline value for ``dataset``."""
    regions = ("A", "B")
    try:
        spec = get_dataset(dataset)
        regions = tuple(r.name for r in spec.regions if r.in_mean)[:2] or regions
        dataset = spec.key
    except UnknownDatasetError:
        pass
    first, second = regions if len(regions) == 2 else (regions[0], regions[0] + "_second")
    cases = [(0, "c1", 0.9, 0.6), (0, "c2", 0.8, np.nan), (0, "c3", 0.7, 0.2), (1, "c4", 0.5, 0.4), (1, "c5", 0.6, 0.2)]
    frame = _tidy(dataset, "dsc",
                  [row for fold, case, a, b in cases for row in ((fold, case, first, a), (fold, case, second, b))])
    (row,) = headlines(case_matrices(frame, "dsc", "paper").values(), n_resamples=0).to_dict("records")
    values = np.array([[a, b] for _, _, a, b in cases]) * 100.0
    folds = np.array([fold for fold, *_ in cases])

    def estimate(table: np.ndarray) -> float:
        return float(np.mean(np.nanmean(table, axis=0)))

    candidates = {}
    for convention, table in ((NAN_SKIPPED, values), (NAN_IS_1, np.where(np.isnan(values), 100.0, values))):
        candidates[(POOLED, convention)] = estimate(table)
        candidates[(FOLD_MEANS, convention)] = float(np.mean([estimate(table[folds == f]) for f in (0, 1)]))
    for found, value in candidates.items():
        if np.isclose(row["reproduced"], value, rtol=0, atol=1e-9):
            return found
    return (f"unrecognised ({row['reproduced']:.6g})", "unrecognised")


def evaluation_card(dataset: str) -> dict[str, Any]:
    """The evaluation items of the card for ``dataset`` (registry key or nnU-Net folder name);
    ``eval_regions`` is None for a dataset the registry does not know (its regions come from a config)."""
    try:
        regions: list[list[int]] | None = evaluated_regions(dataset)
    except UnknownDatasetError:
        regions = None
    aggregation, convention = headline_estimator(dataset)
    return {"eval_regions": regions, "cv_aggregation": aggregation, "empty_region_convention": convention}
