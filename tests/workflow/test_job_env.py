"""The ``env NAME=VALUE ...`` prefix the rules put before commands (mednext.workflow.job_env)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mednext.workflow.config_source import load_workflow_config
from mednext.workflow.job_env import env_prefix, job_env
from tests.workflow.conftest import REPO


def test_prefix_survives_the_shell_with_spaces_and_quotes(tmp_path) -> None:
    values = {"nnUNet_raw": str(tmp_path / "my data" / "it's raw"), "MEDNEXT_CONFIG_SHA256": "ab$c`d"}
    script = "import json, os; print(json.dumps({k: os.environ[k] for k in ('nnUNet_raw', 'MEDNEXT_CONFIG_SHA256')}))"
    line = f"{env_prefix(values)} {sys.executable} -c \"{script}\""
    out = subprocess.run(["bash", "-c", line], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == values
    with pytest.raises(ValueError, match="not environment variable names"):
        env_prefix({"bad name": "x"})


def test_job_env_names_the_configs_absolute_nnunet_folders() -> None:
    env = job_env(load_workflow_config(REPO / "config" / "demo.yaml"), REPO / "config" / "demo.yaml")
    assert env["nnUNet_results"] == str(REPO / "demo" / "nnUNet" / "nnUNet_results")  # config/demo.yaml paths.nnunet
    assert {"nnUNet_raw", "nnUNet_preprocessed", "MEDNEXT_CONFIG_SHA256", "MEDNEXT_CONFIG_FILE_SHA256"} <= set(env)
