"""Adding a network is one plugin module: it is listed, configurable and trained in the DAG."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

from mednext.networks import list_networks
from mednext.workflow.config_source import load_workflow_config
from tests.workflow.conftest import REPO, job_counts, run_snakemake

PLUGIN = "tests.plugins.tiny_network"


def _env() -> dict[str, str]:
    return {**os.environ, "MEDNEXT_NETWORK_PLUGINS": PLUGIN, "PYTHONPATH": str(REPO)}


def test_a_plugin_network_is_listed() -> None:
    listed = subprocess.run([sys.executable, "-m", "mednext", "networks"], cwd=REPO, env=_env(), capture_output=True,
                            text=True, check=True, timeout=300).stdout
    row = next(line.split() for line in listed.splitlines() if line.startswith("TinyConv "))
    assert row == ["TinyConv", "baseline", "small", "-", "nnUNetTrainer_TinyConv"]
    assert "MedNeXt-B_k3_twice" in listed  # beside the built-ins and the ablations
    assert "TinyConv" not in list_networks()  # this process was not given the plugin


def test_a_plugin_network_named_in_the_config_trains_in_the_dag(tmp_path) -> None:
    config = load_workflow_config(REPO / "config" / "demo.yaml")
    config.update(networks=["TinyConv"], ablations={})
    config["paths"] = {key: str(tmp_path / key) for key in config["paths"]}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    out = run_snakemake("all_tables", "-n", "--forceall", "--cores", "1", "--configfile", str(path), env=_env()).stdout
    assert job_counts(out)["train"] == len(config["folds"])
    assert "trainer=nnUNetTrainer_TinyConv" in out and f"{tmp_path}/results/synthetic/TinyConv/fold_0/metrics.csv" in out


def test_a_plugin_the_user_names_but_python_cannot_find_fails_loudly() -> None:
    """A module named in $MEDNEXT_NETWORK_PLUGINS is asked for: not finding it is an error, not a skip."""
    env = {**_env(), "PYTHONPATH": ""}  # the plugin's folder is not on the path
    result = subprocess.run([sys.executable, "-m", "mednext", "networks"], cwd=REPO / "config", env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "MEDNEXT_NETWORK_PLUGINS names 'tests.plugins.tiny_network', which cannot be imported" in result.stderr
