"""Reproduced-vs-reported tables: fold statistics, Δ, flags, missing runs as "—" (issue 7)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mednext.tables.compare import MISSING, compare
from mednext.tables.results_tables import write_all_tables


def _per_fold(rows: list[tuple[str, str, int, str, float]], spacing_mode: str = "paper") -> pd.DataFrame:
    return pd.DataFrame(
        [{"dataset": d, "network": n, "fold": str(f), "class": "mean_over_classes", "metric": m,
          "spacing_mode": spacing_mode, "mean": v, "std": np.nan, "n_cases": 6, "n_nan": 0, "n_inf": 0}
         for d, n, f, m, v in rows]
    )


REPORTED = pd.DataFrame({"network": ["A", "A", "A", "A"], "dataset": ["btcv", "btcv", "amos22", "amos22"],
                         "metric": ["DSC", "SDC", "DSC", "SDC"], "value": [80.0, 82.0, 85.0, 86.0]})


def test_mean_std_delta_and_flag_from_fold_means() -> None:
    per_fold = _per_fold([("btcv", "A", f, "dsc", v) for f, v in enumerate([0.80, 0.82, 0.84])]
                         + [("btcv", "A", f, "sdc", v) for f, v in enumerate([0.90, 0.91, 0.92])])
    table = compare(REPORTED, per_fold, "paper", n_folds=3).set_index(["dataset", "metric"])
    dsc = table.loc[("btcv", "DSC")]
    assert dsc["reproduced"] == pytest.approx(82.0)
    assert dsc["fold_std"] == pytest.approx(np.std([80, 82, 84], ddof=1))
    assert dsc["delta"] == pytest.approx(2.0) and not dsc["flagged"] and dsc["complete"]
    sdc = table.loc[("btcv", "SDC")]
    assert sdc["delta"] == pytest.approx(9.0) and sdc["flagged"]  # 9 points off, fold std 1
    missing = table.loc[("amos22", "DSC")]
    assert np.isnan(missing["reproduced"]) and missing["folds_done"] == 0 and not missing["complete"]


def test_other_spacing_mode_and_partial_folds() -> None:
    per_fold = _per_fold([("btcv", "A", 0, "dsc", 0.5)], spacing_mode="physical")
    assert np.isnan(compare(REPORTED, per_fold, "paper", 5).loc[0, "reproduced"])
    partial = compare(REPORTED, _per_fold([("btcv", "A", 0, "dsc", 0.5)]), "paper", 5).iloc[0]
    assert partial["folds_done"] == 1 and not partial["complete"] and np.isnan(partial["fold_std"])


def test_unreported_dataset_rows_are_added_for_reported_networks() -> None:
    per_fold = _per_fold([("synthetic", "A", 0, "dsc", 0.7), ("synthetic", "B", 0, "dsc", 0.9)])
    table = compare(REPORTED, per_fold, "paper", 2)
    extra = table[table["dataset"] == "synthetic"]
    assert sorted(extra["metric"]) == ["DSC", "SDC"] and (extra["network"] == "A").all()  # B is not a reported network
    assert extra.set_index("metric").loc["DSC", "reproduced"] == pytest.approx(70.0)
    assert extra["reported"].isna().all()


def test_average_needs_all_four_datasets_complete() -> None:
    reported = pd.DataFrame({"network": ["A"] * 5, "dataset": ["btcv", "amos22", "kits19", "brats21", "average"],
                             "metric": ["DSC"] * 5, "value": [80.0, 85.0, 90.0, 91.0, 86.5]})
    three = _per_fold([(d, "A", 0, "dsc", 0.8) for d in ("btcv", "amos22", "kits19")])
    assert np.isnan(compare(reported, three, "paper", 1).set_index("dataset").loc["average", "reproduced"])
    four = _per_fold([(d, "A", 0, "dsc", v) for d, v in zip(("btcv", "amos22", "kits19", "brats21"), (0.8, 0.84, 0.9, 0.9))])
    assert compare(reported, four, "paper", 1).set_index("dataset").loc["average", "reproduced"] == pytest.approx(86.0)


def test_all_tables_written_without_any_run(tmp_path, repo_root) -> None:
    paths = write_all_tables(repo_root / "paper_tables/reported", None, tmp_path, "paper", 5)
    names = sorted(p.name for p in paths)
    assert names == sorted([f"{s}.{e}" for s in ("table2", "table1_ablations", "test_set") for e in ("csv", "md", "tex")]
                           + ["reproduced_vs_reported.png"])
    table2 = pd.read_csv(tmp_path / "table2.csv")
    assert len(table2) == 150 and table2["reproduced"].isna().all() and (table2["folds_done"] == 0).all()
    markdown = (tmp_path / "table2.md").read_text()
    assert markdown.count(MISSING) >= 150 and "83.56" in markdown
    assert "\\begin{tabular}" in (tmp_path / "table2.tex").read_text()
    assert (tmp_path / "reproduced_vs_reported.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recorded_leaderboard_score_fills_the_test_set_table(tmp_path, repo_root) -> None:
    board = tmp_path / "leaderboard.csv"
    pd.DataFrame([{"recorded_at": "2026-01-01T00:00:00", "dataset": "kits19", "network": "MedNeXt-L_k5",
                   "split": "test", "metric": "DSC", "value": 90.5, "submission": "x.zip", "note": ""}]).to_csv(board, index=False)
    write_all_tables(repo_root / "paper_tables/reported", None, tmp_path, "paper", 5, board)
    test_set = pd.read_csv(tmp_path / "test_set.csv").set_index(["dataset", "metric"])
    assert test_set.loc[("kits19", "DSC"), "reproduced"] == 90.5
    assert test_set.loc[("kits19", "DSC"), "delta"] == pytest.approx(90.5 - 91.02)
    assert np.isnan(test_set.loc[("btcv", "DSC"), "reproduced"])
