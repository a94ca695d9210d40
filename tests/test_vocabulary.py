"""The one vocabulary of results: every name the reported tables use resolves, folds outside the CV are refused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from mednext.data.splits import kfold_splits
from mednext.vocabulary import FOLDS, N_FOLDS, TABLE_METRICS, metric, paper_name, tidy_key
from mednext.workflow.grid import ConfigError, check_config

REPO = Path(__file__).resolve().parents[1]
REPORTED = REPO / "paper_tables" / "reported"


@pytest.mark.parametrize("table", ["table2.csv", "table1_ablations.csv", "test_set.csv"])
def test_every_reported_metric_name_is_known(table: str) -> None:
    """A metric the paper reports but the vocabulary does not know would leave its row without a reproduction."""
    names = set(pd.read_csv(REPORTED / table)["metric"])
    assert {n for n in names if tidy_key(n) is None} == set()


def test_names_units_and_aliases() -> None:
    # Paper Tables 1-2 print DSC and surface Dice in percent; its test-set table gives HD95 in mm.
    assert [paper_name(m) for m in TABLE_METRICS] == ["DSC", "SDC"]
    assert tidy_key("NSD") == tidy_key("sdc") == "sdc" and tidy_key("dsc") == "dsc"
    assert metric("DSC").scale() == 100.0 and metric("HD95").scale() == 1.0 and metric("hd95").unit == "mm"
    assert not metric("HD95").higher_is_better and paper_name("gt_voxels") == "gt_voxels"
    with pytest.raises(KeyError, match="unknown metric 'Jaccard'"):
        metric("Jaccard")


def test_fold_count_is_the_paper_configs_and_the_splits() -> None:
    """config/paper.yaml trains every fold; the split rule makes exactly that many."""
    assert yaml.safe_load((REPO / "config" / "paper.yaml").read_text())["folds"] == list(FOLDS)
    assert len(kfold_splits([f"case_{i:03d}" for i in range(12)])) == N_FOLDS == 5


def test_a_fold_outside_the_cross_validation_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"my.yaml: folds \[5\] are not among the 5 cross-validation folds 0-4"):
        check_config({"folds": [0, 5], "datasets": ["synthetic"], "networks": ["nnUNet"]}, "my.yaml")
    check_config({"folds": [4], "datasets": ["synthetic"], "networks": ["nnUNet"]}, "my.yaml")
