"""Paired comparisons: Wilcoxon p equals scipy's, Holm equals a hand computation, planted effects,
missing cases named in a warning, and the comparisons the paper's tables call for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from stats_frames import tidy

from mednext.statistics.cases import case_matrices
from mednext.statistics.comparisons import comparisons_for, paper_differences
from mednext.statistics.paired import Comparison, compare_pair, holm, significance_table

REGIONS = ("liver", "spleen", "kidney_right", "kidney_left")


def _planted(shift: float, noise: float, n_per_fold: int = 12, folds: int = 2, seed: int = 0):
    """Reference and network runs on the same cases; the network's values are the reference's + shift + noise."""
    rng = np.random.default_rng(seed)
    ref, net = {}, {}
    for fold in range(folds):
        for i in range(n_per_fold):
            key = (fold, f"case_{fold}_{i:02d}")
            base = rng.uniform(0.6, 0.9, size=len(REGIONS))
            ref[key] = dict(zip(REGIONS, base))
            net[key] = dict(zip(REGIONS, base + shift + rng.normal(0.0, noise, size=len(REGIONS))))
    frame = pd.concat([tidy("synthetic", "nnUNet", ref), tidy("synthetic", "MedNeXt-S_k3", net)])
    matrices = case_matrices(frame, "dsc", "paper")
    return matrices[("synthetic", "MedNeXt-S_k3")], matrices[("synthetic", "nnUNet")], ref, net


def test_p_value_equals_scipy_wilcoxon_on_case_means() -> None:
    net, ref, ref_cases, net_cases = _planted(shift=0.005, noise=0.02)
    row = compare_pair(net, ref, n_resamples=500)
    # independent: per case, the mean over the four regions, in percent, network − reference
    diffs = np.array([np.mean(list(net_cases[k].values())) - np.mean(list(ref_cases[k].values()))
                      for k in sorted(ref_cases)]) * 100
    assert row["n_cases"] == 24 and row["mean_diff"] == pytest.approx(diffs.mean())
    assert row["p_value"] == pytest.approx(stats.wilcoxon(diffs).pvalue, rel=1e-12)


def test_planted_zero_difference_gives_ci_around_zero_and_large_p() -> None:
    net, ref, *_ = _planted(shift=0.0, noise=0.01, seed=1)
    row = compare_pair(net, ref, n_resamples=2000)
    assert row["ci_low"] < 0.0 < row["ci_high"]
    assert row["p_value"] > 0.2


def test_planted_two_points_gives_the_expected_sign() -> None:
    net, ref, *_ = _planted(shift=0.02, noise=0.01, seed=2)
    forward = compare_pair(net, ref, n_resamples=2000)
    assert 1.5 < forward["mean_diff"] < 2.5 and forward["ci_low"] > 0 and forward["p_value"] < 1e-3
    backward = compare_pair(ref, net, n_resamples=2000)
    assert backward["mean_diff"] == pytest.approx(-forward["mean_diff"]) and backward["ci_high"] < 0


def test_holm_equals_hand_computation() -> None:
    # sorted: 0.005*4 = 0.02; 0.01*3 = 0.03; 0.03*2 = 0.06; 0.04*1 = 0.04 -> running max 0.06. NaN not counted.
    adjusted = holm([0.01, 0.04, np.nan, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, np.nan, 0.06, 0.02])
    assert holm([0.5, 0.6])[0] == 1.0  # capped at 1 (0.5 * 2)


def test_cases_missing_from_one_run_are_dropped_with_a_warning_naming_them() -> None:
    _, _, ref_cases, net_cases = _planted(shift=0.01, noise=0.01)
    del net_cases[(0, "case_0_03")]
    del ref_cases[(1, "case_1_07")]
    frame = pd.concat([tidy("synthetic", "nnUNet", ref_cases), tidy("synthetic", "MedNeXt-S_k3", net_cases)])
    matrices = case_matrices(frame, "dsc", "paper")
    with pytest.warns(UserWarning, match="case_0_03, case_1_07"):
        row = compare_pair(matrices[("synthetic", "MedNeXt-S_k3")], matrices[("synthetic", "nnUNet")], n_resamples=200)
    assert row["n_cases"] == 22 and row["n_dropped"] == 2


def test_holm_runs_within_each_table() -> None:
    net, ref, *_ = _planted(shift=0.01, noise=0.02)
    matrices = {("synthetic", "MedNeXt-S_k3", "dsc"): net, ("synthetic", "nnUNet", "dsc"): ref,
                ("synthetic", "MedNeXt-S_k3", "sdc"): net, ("synthetic", "nnUNet", "sdc"): ref}
    comparisons = [Comparison("table_a", "synthetic", "MedNeXt-S_k3", "nnUNet", "vs nnUNet"),
                   Comparison("table_b", "synthetic", "nnUNet", "MedNeXt-S_k3", "reverse")]
    table = significance_table(matrices, comparisons, ("dsc", "sdc"), n_resamples=100)
    assert len(table) == 4
    for _, rows in table.groupby("table"):  # two equal p per table: Holm doubles the smaller (m = 2, not 4)
        assert rows["p_holm"].to_numpy() == pytest.approx(np.minimum(2 * rows["p_value"].to_numpy(), 1.0))


def test_comparisons_follow_the_papers_tables(repo_root) -> None:
    """Ablation pairs match the groups of the transcribed Table 1 (right); MedNeXt vs nnU-Net; k5 vs its k3 parent."""
    reported = pd.read_csv(repo_root / "paper_tables/reported/table1_ablations.csv")
    paper_pairs = set()
    for _, rows in reported[reported["ablation"] != "baseline"].groupby("ablation"):
        ablated = [n for n in rows["network"].unique() if n not in ("MedNeXt-B_k3", "MedNeXt-B_k5")]
        base = [n for n in rows["network"].unique() if n not in ablated]
        paper_pairs |= {(ablated[0], base[0])}
    networks = ["nnUNet", "MedNeXt-B_k3", "MedNeXt-B_k5", "MedNeXt-S_k3", "MedNeXt-B_k3_standard_resampling",
                "MedNeXt-B_k5_scratch", "MedNeXt-B_k3_twice"]
    found = comparisons_for([("btcv", n) for n in networks] + [("synthetic", "MedNeXt-S_k3")], ["btcv"])
    pairs = {(c.network, c.reference): c for c in found}
    assert {p for p, c in pairs.items() if c.table == "table1_ablations"} == paper_pairs
    assert {("MedNeXt-B_k3", "nnUNet"), ("MedNeXt-B_k5", "nnUNet"), ("MedNeXt-S_k3", "nnUNet"),
            ("MedNeXt-B_k5", "MedNeXt-B_k3")} == {p for p, c in pairs.items() if c.table == "table2"}
    assert all(c.dataset == "btcv" for c in found)  # synthetic has no nnU-Net run: nothing to compare


def test_paper_difference_has_the_papers_sign(repo_root) -> None:
    reported = pd.read_csv(repo_root / "paper_tables/reported/table2.csv")
    rows = pd.DataFrame({"network": ["MedNeXt-B_k5", "MedNeXt-S_k3"], "reference": ["nnUNet", "nnUNet"],
                         "dataset": ["btcv", "synthetic"], "metric": ["dsc", "dsc"]})
    diffs = paper_differences(rows, reported)
    assert diffs[0] == pytest.approx(84.23 - 83.56)  # Table 2, BTCV DSC
    assert np.isnan(diffs[1])
