"""The official pooled CV mean vs the mean of fold means, on hand-made cases where they differ, and the two
empty-region conventions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from stats_frames import tidy

from mednext.statistics.aggregate import fold_values, headline, pooled_mean
from mednext.statistics.bootstrap import bootstrap_samples, weight_blocks
from mednext.statistics.cases import case_matrices

NAN = float("nan")
# Fold 0 holds two cases where region B is absent (NaN), fold 1 none: unequal NaN counts per fold.
CASES = {
    (0, "c1"): {"A": 0.9, "B": 0.6}, (0, "c2"): {"A": 0.8, "B": NAN}, (0, "c3"): {"A": 0.7, "B": NAN},
    (1, "c4"): {"A": 0.5, "B": 0.4}, (1, "c5"): {"A": 0.6, "B": 0.2},
}


def _matrix(frame: pd.DataFrame, metric: str = "dsc", mode: str = "paper"):
    (matrix,) = case_matrices(frame, metric, mode).values()
    return matrix


def test_pooled_and_fold_mean_differ_as_computed_by_hand() -> None:
    matrix = _matrix(tidy("synthetic", "X", CASES))
    # Pooled: A over 5 cases = 3.5 / 5 = 0.70; B over its 3 finite cases = 1.2 / 3 = 0.40; mean 0.55.
    assert pooled_mean(matrix) == pytest.approx(55.0)
    # Per fold: fold 0 A 0.8, B 0.6 -> 0.70; fold 1 A 0.55, B 0.30 -> 0.425. Mean 0.5625, std 0.275 / sqrt(2).
    folds = fold_values(matrix)
    assert folds.to_dict() == pytest.approx({"0": 70.0, "1": 42.5})
    row = headline(matrix, n_resamples=0)
    assert row["reproduced"] == pytest.approx(55.0)
    assert row["fold_mean"] == pytest.approx(56.25)
    assert row["fold_std"] == pytest.approx(27.5 / np.sqrt(2))
    assert row["folds_done"] == 2 and row["n_cases"] == 5


def test_region_outside_the_mean_is_left_out() -> None:
    """KiTS19's kidney+tumor composite is reported beside the mean, not in it (registry Region.in_mean)."""
    cases = {(0, "k1"): {"kidney": 0.9, "tumor": 0.5, "kidney_and_tumor": 0.0},
             (0, "k2"): {"kidney": 0.7, "tumor": 0.3, "kidney_and_tumor": 0.0}}
    matrix = _matrix(tidy("kits19", "X", cases))
    assert matrix.regions == ("kidney", "tumor")
    assert pooled_mean(matrix) == pytest.approx((0.8 + 0.4) / 2 * 100)


def test_only_the_chosen_spacing_mode_and_metric_count() -> None:
    frame = pd.concat([tidy("synthetic", "X", CASES, spacing_modes=("paper",)),
                       tidy("synthetic", "X", {k: {r: 0.0 for r in v} for k, v in CASES.items()},
                            spacing_modes=("physical",)),
                       tidy("synthetic", "X", {k: {r: 1.0 for r in v} for k, v in CASES.items()}, metric="sdc")])
    assert pooled_mean(_matrix(frame, "dsc", "paper")) == pytest.approx(55.0)
    assert pooled_mean(_matrix(frame, "dsc", "physical")) == pytest.approx(0.0)


def test_every_resample_handles_nan_as_the_point_estimate() -> None:
    """Resample b of the vectorised bootstrap equals pandas on the cases repeated by their multiplicities."""
    matrix = _matrix(tidy("synthetic", "X", CASES))
    samples = bootstrap_samples(matrix.values, matrix.fold_sizes(), n_resamples=60, seed=3)
    weights = next(weight_blocks(matrix.fold_sizes(), 60, 3))
    frame = pd.DataFrame(matrix.values, columns=list(matrix.regions))
    for b in range(60):
        counts = weights[b].astype(int)
        resampled = frame.loc[frame.index.repeat(counts)]
        expected = resampled.mean(skipna=True).mean(skipna=True)  # per region nanmean, then over regions
        assert samples[b] == pytest.approx(expected), b
        # stratified: each fold keeps its number of cases
        assert counts[:3].sum() == 3 and counts[3:].sum() == 2
    assert not np.isnan(samples).any()


# BraTS21: ET absent from both masks in c2 and c4 (NaN), so "NaN as 1" and "NaN skipped" differ.
BRATS = {
    (0, "b1"): {"WT": 0.9, "TC": 0.8, "ET": 0.7}, (0, "b2"): {"WT": 0.8, "TC": 0.6, "ET": NAN},
    (1, "b3"): {"WT": 0.7, "TC": 0.5, "ET": 0.4}, (1, "b4"): {"WT": 0.6, "TC": 0.4, "ET": NAN},
}


def test_brats_headline_counts_absent_regions_as_1_and_keeps_the_other_beside() -> None:
    """The official BraTS 2021 script reads the 'mean (nan is 1)' row; the NaN-skipping value is kept beside it."""
    matrix = _matrix(tidy("brats21", "X", BRATS))
    # WT 3.0 / 4 = 0.75, TC 2.3 / 4 = 0.575; ET as 1: (0.7 + 1 + 0.4 + 1) / 4 = 0.775, skipped: 1.1 / 2 = 0.55
    nan_is_1, skipped = (0.75 + 0.575 + 0.775) / 3 * 100, (0.75 + 0.575 + 0.55) / 3 * 100
    assert matrix.convention == "nan_is_1" and pooled_mean(matrix) == pytest.approx(nan_is_1)
    assert pooled_mean(matrix.under("nan_skipped")) == pytest.approx(skipped)
    row = headline(matrix, n_resamples=0)
    assert (row["reproduced"], row["reproduced_other"]) == pytest.approx((nan_is_1, skipped))
    assert (row["convention"], row["other_convention"]) == ("nan_is_1", "nan_skipped")
    # per fold, NaN as 1: fold 0 (0.85 + 0.7 + 0.85) / 3 = 0.8, fold 1 (0.65 + 0.45 + 0.7) / 3 = 0.6
    assert fold_values(matrix).to_dict() == pytest.approx({"0": 80.0, "1": 60.0})
    # a CT dataset keeps NaN skipped and shows no second value
    ct = headline(_matrix(tidy("btcv", "X", CASES)), n_resamples=0)
    assert ct["convention"] == "nan_skipped" and ct["other_convention"] == "" and np.isnan(ct["reproduced_other"])


def test_brats_resamples_use_the_headline_convention() -> None:
    matrix = _matrix(tidy("brats21", "X", BRATS))
    samples = bootstrap_samples(matrix.scored(), matrix.fold_sizes(), n_resamples=40, seed=5)
    weights = next(weight_blocks(matrix.fold_sizes(), 40, 5))
    frame = pd.DataFrame(matrix.values, columns=list(matrix.regions)).fillna(100.0)
    for b in range(40):
        resampled = frame.loc[frame.index.repeat(weights[b].astype(int))]
        assert samples[b] == pytest.approx(resampled.mean().mean()), b


def test_distances_have_no_perfect_score_so_nan_stays_skipped() -> None:
    """HD95 of a region absent from both masks stays NaN under either convention (no official 'nan is 1' for it)."""
    matrix = _matrix(tidy("brats21", "X", {(0, "b1"): {"WT": 3.0, "TC": 4.0, "ET": NAN},
                                           (0, "b2"): {"WT": 5.0, "TC": 2.0, "ET": 6.0}}, metric="hd95"), "hd95")
    assert matrix.convention == "nan_is_1" and np.isnan(matrix.scored()[0, matrix.regions.index("ET")])
    assert pooled_mean(matrix) == pytest.approx((4.0 + 3.0 + 6.0) / 3)


def test_a_case_missing_a_region_row_is_an_error_not_an_absent_region() -> None:
    frame = tidy("brats21", "X", BRATS)
    frame = frame[~((frame["case"] == "b3") & (frame["class"] == "ET"))]
    with pytest.raises(ValueError, match=r"brats21/X dsc: case 'b3' of fold 1 has no row for region\(s\) \['ET'\]"):
        _matrix(frame)
