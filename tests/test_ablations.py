"""The ablation table (mednext.ablations) against the paper's Table 1 (right) and what it drives."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mednext.ablations import ABLATIONS, ablation_of_network, get_ablation
from mednext.networks import get_network, list_networks
from mednext.statistics.comparisons import comparisons_for
from mednext.workflow import resources as res
from mednext.workflow.config_source import load_workflow_config
from mednext.workflow.targets import ablation_metrics, ablation_targets

REPO = Path(__file__).resolve().parents[1]
REPORTED = REPO / "paper_tables" / "reported"


def test_each_ablation_is_one_row_group_of_the_papers_table1() -> None:
    """The transcription (tested against the paper's text) pairs each ablation with the row it is set against."""
    reported = pd.read_csv(REPORTED / "table1_ablations.csv")
    groups = {key: set(rows["network"]) for key, rows in reported.groupby("ablation") if key != "baseline"}
    assert {a.key: set(a.networks) for a in ABLATIONS if a.key in groups} == groups  # an ablation of our own has no row
    assert set(list_networks(["ablation"])) == {a.network.name for a in ABLATIONS}


def test_an_ablation_changes_a_network_of_the_same_size_and_kernel() -> None:
    for ablation in ABLATIONS:
        changed = get_network(ablation.modifies)
        assert ablation.network.tags == changed.tags and ablation.network.size_class == changed.size_class
        assert get_network(ablation.network.name) == ablation.network  # registered as given
        assert ablation_of_network(ablation.network.name) is ablation
    assert ablation_of_network("MedNeXt-B_k3") is None


def test_targets_and_resources_follow_the_table() -> None:
    config = load_workflow_config(REPO / "config" / "paper.yaml")
    assert ablation_targets() == ["ablation_resampling", "ablation_upkern", "ablation_twice"]
    files = ablation_metrics(config, "ablation_twice")
    assert len(files) == 2 * 2 * 5 and {f.split("/")[1] for f in files} == {"btcv", "amos22"}
    assert {f.split("/")[2] for f in files} == {"MedNeXt-B_k3_twice", "MedNeXt-B_k5"}
    with pytest.raises(KeyError, match="unknown ablation 'ablation_nothing'"):
        get_ablation("ablation_nothing")
    # an ablation costs what the network it changes costs: Table 1 (left) seconds per epoch x 1000 epochs
    configs = pd.read_csv(REPORTED / "table1_configs.csv").set_index(["variant", "kernel"])
    for network, kernel in (("MedNeXt-B_k5_scratch", 5), ("MedNeXt-B_k3_twice", 3), ("MedNeXt-B_k3_standard_resampling", 3)):
        assert res.paper_gpu_hours(network, config) == pytest.approx(
            configs.loc[("B", kernel), "secs_per_train_epoch"] * 1000 / 3600)


def test_significance_compares_each_ablation_with_its_table_partner() -> None:
    runs = [("btcv", n) for n in ("MedNeXt-B_k3", "MedNeXt-B_k5", "MedNeXt-B_k3_twice", "MedNeXt-B_k5_scratch")]
    pairs = {(c.network, c.reference) for c in comparisons_for(runs, ["btcv"]) if c.kind == "ablation vs base"}
    assert pairs == {("MedNeXt-B_k3_twice", "MedNeXt-B_k5"), ("MedNeXt-B_k5_scratch", "MedNeXt-B_k5")}
