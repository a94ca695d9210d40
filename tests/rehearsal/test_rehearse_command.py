"""``mednext-repro rehearse`` end to end on the demo's small generated dataset (about 80 s on 2 cores):
a planning request too small for what planning measured makes it exit non-zero naming that job, and the
calibration it writes makes the workflow request what was measured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mednext.workflow import resources as res
from mednext.workflow.config_source import load_workflow_config
from tests.workflow.conftest import REPO


@pytest.mark.slow
def test_a_too_small_planning_request_fails_and_the_calibration_fixes_it(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["resources"]["plan_mem_mb"] = 500  # the planning process alone holds more (nnU-Net's fingerprint)
    config["calibration"] = str(tmp_path / "rehearsal" / "calibration.yaml")
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "mednext", "rehearse", "--config", str(path), "--cases", "5",
                             "--max-workers", "2"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("plan_and_preprocess synthetic:")]
    assert len(lines) == 1 and "> 0.5 GB requested" in lines[0] and "--set-resources plan_and_preprocess:mem_mb=" in lines[0]

    rows = pd.read_csv(tmp_path / "rehearsal" / "rehearsal.csv")
    plan = rows[rows["job"] == "plan_and_preprocess"].iloc[0]
    assert plan["verdict"] == "does not fit" and plan["predicted_mem_mb"] > 500
    assert set(rows.loc[rows["job"] == "train", "verdict"]) == {"not measured: no GPU"}
    assert rows.loc[rows["job"] == "train", "predicted_runtime_min"].isna().all()
    measured = pd.read_csv(tmp_path / "rehearsal" / "measurements.csv")
    preprocessed = measured[(measured["stage"] == "plan_and_preprocess") & (measured["case"] != "*")]
    assert len(set(preprocessed["case"])) == 5 and (preprocessed["worker_peak_mb"] > 0).all()
    assert (tmp_path / "rehearsal" / "rehearsal.png").stat().st_size > 10_000

    # with the calibration the planning job asks for what was measured (x the margin), not 500 MB
    calibrated = res.plan_request("synthetic", load_workflow_config(path))
    assert calibrated.calibrated and calibrated.mem_mb >= plan["predicted_mem_mb"] * 1.25 - 1
