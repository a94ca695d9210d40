"""Reproduced-vs-reported tables: pooled headline, CI flag, fold spread, Δ, missing runs as "—",
the table of datasets outside the paper, significance outputs and the provenance columns."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mednext.cli import entry
from mednext.tables.compare import MISSING, compare
from mednext.tables.results_tables import write_all_tables

COLUMNS = ["dataset", "network", "fold", "case", "class", "metric", "spacing_mode", "value", "tolerance_mm"]
NAN = float("nan")


def _headline(rows: list[tuple[str, str, str, float, float, float, float, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["dataset", "network", "metric", "reproduced", "ci_low", "ci_high",
                                       "fold_mean", "fold_std", "folds_done"]).assign(
        n_cases=10, convention="nan_skipped", other_convention="", reproduced_other=NAN)


REPORTED = pd.DataFrame({"network": ["A", "A", "A", "A"], "dataset": ["btcv", "btcv", "amos22", "amos22"],
                         "metric": ["DSC", "SDC", "DSC", "SDC"], "value": [80.0, 82.0, 85.0, 86.0]})


def test_flag_means_paper_value_outside_the_ci() -> None:
    headline = _headline([("btcv", "A", "dsc", 81.0, 79.5, 82.5, 81.2, 3.0, 3),    # 80 inside the CI
                          ("btcv", "A", "sdc", 85.0, 84.0, 86.0, 85.1, 9.0, 3)])   # 82 outside, though within 1 fold-std
    table = compare(REPORTED, headline, n_folds=3).set_index(["dataset", "metric"])
    dsc, sdc = table.loc[("btcv", "DSC")], table.loc[("btcv", "SDC")]
    assert dsc["reproduced"] == 81.0 and dsc["delta"] == pytest.approx(1.0)
    assert dsc["paper_in_ci"] and not dsc["flagged"] and dsc["complete"]
    assert not sdc["paper_in_ci"] and sdc["flagged"]
    missing = table.loc[("amos22", "DSC")]
    assert np.isnan(missing["reproduced"]) and missing["folds_done"] == 0 and not missing["complete"]
    assert pd.isna(missing["paper_in_ci"]) and not missing["flagged"]


def test_average_needs_all_four_datasets_complete() -> None:
    reported = pd.DataFrame({"network": ["A"] * 5, "dataset": ["btcv", "amos22", "kits19", "brats21", "average"],
                             "metric": ["DSC"] * 5, "value": [80.0, 85.0, 90.0, 91.0, 86.5]})
    three = _headline([(d, "A", "dsc", 80.0, 79.0, 81.0, 80.0, 1.0, 1) for d in ("btcv", "amos22", "kits19")])
    assert np.isnan(compare(reported, three, 1).set_index("dataset").loc["average", "reproduced"])
    four = _headline([(d, "A", "dsc", v, v - 1, v + 1, v, 1.0, 1)
                      for d, v in zip(("btcv", "amos22", "kits19", "brats21"), (80.0, 84.0, 90.0, 90.0))])
    assert compare(reported, four, 1).set_index("dataset").loc["average", "reproduced"] == pytest.approx(86.0)


def _write_metrics(tmp_path: Path, cases: dict, dataset: str = "btcv") -> list[Path]:
    """One metrics.csv per (network, fold): ``cases`` maps (network, fold, case) -> {region: DSC}; SDC = DSC."""
    rows = [[dataset, net, str(fold), case, region, metric, mode, value, 1.0]
            for (net, fold, case), regions in cases.items() for region, value in regions.items()
            for metric in ("dsc", "sdc") for mode in ("paper", "physical")]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    paths = []
    for (net, fold), part in frame.groupby(["network", "fold"]):
        path = tmp_path / "results" / dataset / net / f"fold_{fold}" / "metrics.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        part.to_csv(path, index=False)
        paths.append(path)
    return paths


# BTCV-like: organ "spleen" absent (NaN) in two fold-0 cases only, so pooled and fold-mean differ.
HAND_CASES = {
    ("nnUNet", 0, "c1"): {"spleen": 0.9, "liver": 0.6}, ("nnUNet", 0, "c2"): {"spleen": NAN, "liver": 0.8},
    ("nnUNet", 0, "c3"): {"spleen": NAN, "liver": 0.7},
    ("nnUNet", 1, "c4"): {"spleen": 0.5, "liver": 0.4}, ("nnUNet", 1, "c5"): {"spleen": 0.6, "liver": 0.2},
}


def test_table2_headline_is_the_pooled_mean_with_the_fold_spread_beside_it(tmp_path, repo_root) -> None:
    paths = _write_metrics(tmp_path, HAND_CASES)
    write_all_tables(repo_root / "paper_tables/reported", paths, tmp_path / "out", "paper", 2, n_resamples=200)
    table2 = pd.read_csv(tmp_path / "out/table2.csv").set_index(["network", "dataset", "metric"])
    row = table2.loc[("nnUNet", "btcv", "DSC")]
    # pooled: spleen (0.9 + 0.5 + 0.6) / 3 = 0.6667, liver 2.7 / 5 = 0.54 -> 60.33 %
    assert row["reproduced"] == pytest.approx((2.0 / 3 + 0.54) / 2 * 100)
    # folds: fold 0 (0.9 + 0.7) / 2 = 0.80, fold 1 (0.55 + 0.30) / 2 = 0.425 -> 61.25 ± 26.52
    assert row["fold_mean"] == pytest.approx(61.25) and row["fold_std"] == pytest.approx(37.5 / np.sqrt(2))
    assert row["ci_low"] <= row["reproduced"] <= row["ci_high"] and row["folds_done"] == 2
    assert row["flagged"] == (not row["ci_low"] <= 83.56 <= row["ci_high"])
    caption = (tmp_path / "out/table2.md").read_text()
    assert "Reproduced (pooled)" in caption and "Fold mean ± std" in caption and "outside the 95 % CI" in caption


# BraTS21: ET absent from both masks in two cases, so "NaN as 1" (headline) and "NaN skipped" differ.
BRATS_CASES = {
    ("nnUNet", 0, "b1"): {"WT": 0.9, "TC": 0.8, "ET": 0.7}, ("nnUNet", 0, "b2"): {"WT": 0.8, "TC": 0.6, "ET": NAN},
    ("nnUNet", 1, "b3"): {"WT": 0.7, "TC": 0.5, "ET": 0.4}, ("nnUNet", 1, "b4"): {"WT": 0.6, "TC": 0.4, "ET": NAN},
}


def test_brats_rows_of_table2_carry_both_conventions(tmp_path, repo_root) -> None:
    paths = _write_metrics(tmp_path, BRATS_CASES, dataset="brats21") + _write_metrics(tmp_path, HAND_CASES)
    write_all_tables(repo_root / "paper_tables/reported", paths, tmp_path / "out", "paper", 2, n_resamples=100)
    table2 = pd.read_csv(tmp_path / "out/table2.csv", keep_default_na=False).set_index(["network", "dataset", "metric"])
    row = table2.loc[("nnUNet", "brats21", "DSC")]
    # WT 0.75, TC 0.575; ET with NaN as 1 (0.7 + 1 + 0.4 + 1) / 4 = 0.775, skipped 1.1 / 2 = 0.55
    assert float(row["reproduced"]) == pytest.approx((0.75 + 0.575 + 0.775) / 3 * 100)
    assert float(row["reproduced_other"]) == pytest.approx((0.75 + 0.575 + 0.55) / 3 * 100)
    assert (row["convention"], row["other_convention"]) == ("nan_is_1", "nan_skipped")
    btcv = table2.loc[("nnUNet", "btcv", "DSC")]
    assert btcv["convention"] == "nan_skipped" and btcv["other_convention"] == "" and btcv["reproduced_other"] == ""
    assert table2.loc[("UNETR", "brats21", "DSC"), "other_convention"] == "nan_skipped"  # not run: still named
    shown = (tmp_path / "out/table2.md").read_text()
    assert re.search(r"\| other convention +\|", shown) and re.search(r"\| 62\.50 \(NaN skipped\) +\|", shown)
    assert re.search(r"\| UNETR +\| brats21 +\| DSC .*\| — \(NaN skipped\) +\|", shown)
    assert "Task137_BraTS_2021.py L151" in shown and "brats21 rows: a region absent from both masks counts as" in shown
    ablations = (tmp_path / "out/table1_ablations.md").read_text()  # BTCV and AMOS22 only: no such column or note
    assert "other convention" not in ablations and "Task137" not in ablations


def test_datasets_outside_the_paper_get_their_own_table_without_reported(tmp_path, repo_root) -> None:
    cases = {(net, fold, f"s{fold}{i}"): {"liver": 0.8 + 0.01 * i + (0.05 if net == "MedNeXt-S_k3" else 0.0),
                                         "spleen": 0.6, "kidney_right": 0.7, "kidney_left": 0.7}
             for net in ("nnUNet", "MedNeXt-S_k3") for fold in (0, 1) for i in range(4)}
    paths = _write_metrics(tmp_path, cases, dataset="synthetic")
    written = write_all_tables(repo_root / "paper_tables/reported", paths, tmp_path / "out", "paper", 2, n_resamples=200)
    assert {p.name for p in written} >= {"results_other_datasets.csv", "results_other_datasets.md",
                                         "results_other_datasets.tex", "significance.csv", "significance.md",
                                         "significance.tex", "significance.png", "reproduced_vs_reported.png"}
    other = pd.read_csv(tmp_path / "out/results_other_datasets.csv")
    assert "reported" not in other.columns and set(other["dataset"]) == {"synthetic"}
    assert len(other) == 4 and (other["folds_done"] == 2).all()  # 2 networks x (DSC, SDC)
    nn = other.set_index(["network", "metric"]).loc[("nnUNet", "DSC")]
    assert nn["reproduced"] == pytest.approx((0.815 + 0.6 + 0.7 + 0.7) / 4 * 100)
    assert "| reported" not in (tmp_path / "out/results_other_datasets.md").read_text()
    table2 = pd.read_csv(tmp_path / "out/table2.csv")  # the paper's table keeps the paper's rows only
    assert "synthetic" not in set(table2["dataset"])
    assert len(table2) == len(pd.read_csv(repo_root / "paper_tables/reported/table2.csv"))
    significance = pd.read_csv(tmp_path / "out/significance.csv")
    row = significance.set_index(["network", "reference", "metric"]).loc[("MedNeXt-S_k3", "nnUNet", "dsc")]
    assert row["mean_diff"] == pytest.approx(5.0 / 4) and row["n_cases"] == 8
    assert row["table"] == "results_other_datasets" and np.isnan(row["paper_diff"])


def test_provenance_adds_key_and_mixed_commit_flag(tmp_path, repo_root) -> None:
    cases = {(net, fold, f"c{fold}{i}"): {"liver": 0.8, "spleen": 0.7}
             for net in ("nnUNet", "MedNeXt-S_k3") for fold in (0, 1) for i in range(2)}
    paths = _write_metrics(tmp_path, cases)
    provenance = tmp_path / "provenance.csv"
    pd.DataFrame({"dataset": ["btcv"] * 4, "network": ["nnUNet", "nnUNet", "MedNeXt-S_k3", "MedNeXt-S_k3"],
                  "fold": [0, 1, 0, 1], "git_commit": ["aaa", "bbb", "ccc", "ccc"],
                  "provenance_key": ["btcv/nnUNet/0", "btcv/nnUNet/1", "btcv/MedNeXt-S_k3/0", "btcv/MedNeXt-S_k3/1"]},
                 ).to_csv(provenance, index=False)
    write_all_tables(repo_root / "paper_tables/reported", paths, tmp_path / "out", "paper", 2,
                     provenance_csv=provenance, n_resamples=50)
    table2 = pd.read_csv(tmp_path / "out/table2.csv", keep_default_na=False).set_index(["network", "dataset", "metric"])
    assert table2.loc[("nnUNet", "btcv", "DSC"), "provenance_key"] == "btcv/nnUNet"
    assert table2.loc[("nnUNet", "btcv", "DSC"), "mixed_commits"] is np.True_       # aaa and bbb
    assert table2.loc[("MedNeXt-S_k3", "btcv", "SDC"), "mixed_commits"] is np.False_ # one commit
    assert table2.loc[("nnUNet", "amos22", "DSC"), "provenance_key"] == ""            # not run
    assert table2.loc[("nnUNet", "btcv", "DSC"), "commits"] == "aaa;bbb"
    shown = (tmp_path / "out/table2.md").read_text()
    assert "| mixed (2) " in shown and "| ccc " in shown  # the short commit where all folds share one
    write_all_tables(repo_root / "paper_tables/reported", paths, tmp_path / "plain", "paper", 2, n_resamples=50)
    assert "provenance_key" not in pd.read_csv(tmp_path / "plain/table2.csv").columns


def test_bad_provenance_file_is_one_error_naming_it(tmp_path, capsys) -> None:
    bad = tmp_path / "provenance.csv"
    pd.DataFrame({"dataset": ["btcv"], "network": ["nnUNet"]}).to_csv(bad, index=False)
    assert entry(["tables", "--out-dir", str(tmp_path / "out"), "--provenance", str(bad), "--resamples", "10"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and str(bad) in error and "git_commit" in error


def test_all_tables_written_without_any_run(tmp_path, repo_root) -> None:
    paths = write_all_tables(repo_root / "paper_tables/reported", None, tmp_path, "paper", 5)
    names = sorted(p.name for p in paths)
    assert names == sorted([f"{s}.{e}" for s in ("table2", "table1_ablations", "test_set", "results_other_datasets",
                                                  "significance") for e in ("csv", "md", "tex", "html")]
                           + ["reproduced_vs_reported.png", "significance.png"])
    table2 = pd.read_csv(tmp_path / "table2.csv")
    assert len(table2) == 150 and table2["reproduced"].isna().all() and (table2["folds_done"] == 0).all()
    markdown = (tmp_path / "table2.md").read_text()
    assert markdown.count(MISSING) >= 150 and "83.56" in markdown
    assert "\\begin{tabular}" in (tmp_path / "table2.tex").read_text()
    page = (tmp_path / "table2.html").read_text()  # the report's view: every row of the Markdown, same cells
    markdown_cells = [c.strip() for line in markdown.splitlines() if line.startswith("|") for c in line.split("|")]
    assert page.count("<tr") == len(table2) + 1 and page.count(f"<td>{MISSING}</td>") == markdown_cells.count(MISSING)
    assert "<h2>" in page and "83.56" in page
    assert (tmp_path / "reproduced_vs_reported.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recorded_leaderboard_score_fills_the_test_set_table(tmp_path, repo_root) -> None:
    board = tmp_path / "leaderboard.csv"
    pd.DataFrame([{"recorded_at": "2026-01-01T00:00:00", "dataset": "kits19", "network": "MedNeXt-L_k5",
                   "split": "test", "metric": "DSC", "value": 90.5, "submission": "x.zip",
                   "note": ""}]).to_csv(board, index=False)
    write_all_tables(repo_root / "paper_tables/reported", None, tmp_path, "paper", 5, board)
    test_set = pd.read_csv(tmp_path / "test_set.csv").set_index(["dataset", "metric"])
    assert test_set.loc[("kits19", "DSC"), "reproduced"] == 90.5
    assert test_set.loc[("kits19", "DSC"), "delta"] == pytest.approx(90.5 - 91.02)
    assert np.isnan(test_set.loc[("btcv", "DSC"), "reproduced"])


def test_overview_plot_says_so_when_no_dataset_of_the_paper_ran(tmp_path, monkeypatch) -> None:
    """The demo's rows (reproduced, no reported value) cannot be drawn against the paper: message, not empty axes."""
    import mednext.tables.plot as plot

    messages = []
    monkeypatch.setattr(plot, "_write_message", lambda fig, ax, out, n: messages.append(n) or out)
    demo_only = pd.DataFrame({"metric": ["DSC", "DSC"], "reported": [83.56, NAN], "reproduced": [NAN, 71.0],
                              "ci_low": [NAN, 70.0], "ci_high": [NAN, 72.0]})
    plot.plot_reproduced_vs_reported(demo_only, tmp_path / "a.png")
    assert messages == [1] and not (tmp_path / "a.png").exists()
    with_paper = demo_only.assign(reproduced=[82.0, 71.0], ci_low=[81.0, 70.0], ci_high=[83.0, 72.0])
    plot.plot_reproduced_vs_reported(with_paper, tmp_path / "b.png")
    assert messages == [1] and (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_untested_pairs_are_listed_in_the_markdown_and_the_html(tmp_path, repo_root) -> None:
    """An ablation without its reference run: no pair to compare, one "not tested" item in both views."""
    cases = {("MedNeXt-B_k3_standard_resampling", fold, f"s{fold}{i}"): {"liver": 0.8, "spleen": 0.6}
             for fold in (0, 1) for i in range(2)}
    paths = _write_metrics(tmp_path, cases, dataset="synthetic")
    write_all_tables(repo_root / "paper_tables/reported", paths, tmp_path / "out", "paper", 2, n_resamples=50)
    item = "synthetic: MedNeXt-B_k3_standard_resampling vs MedNeXt-B_k3 (MedNeXt-B_k3 not run)"
    markdown = (tmp_path / "out/significance.md").read_text()
    assert "_No pair of runs to compare yet._" in markdown and f"Not tested:\n- {item}\n" in markdown
    page = (tmp_path / "out/significance.html").read_text()
    assert "<em>No pair of runs to compare yet.</em>" in page and "<table" not in page
    assert f"<p>Not tested:</p><ul><li>{item}</li></ul>" in page
