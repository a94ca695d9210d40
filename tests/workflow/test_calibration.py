"""The calibration file: read back as written, turned into requests, and seen by the DAG's jobs."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from mednext.workflow import resources as res
from mednext.workflow.calibration import (
    Calibration,
    CalibrationError,
    GpuNetwork,
    GpuRun,
    StageCost,
    read_calibration,
    write_calibration,
)
from mednext.workflow.config_source import load_workflow_config
from tests.workflow.conftest import REPO, run_snakemake

#: KiTS19 as a rehearsal might measure it: a preprocessing worker peaks at 10.6 GB on the largest case.
KITS = {
    "prepare_dataset": StageCost(case_s=4.0, fixed_s=3.0, case_peak_mb=5600.0),
    "plan_and_preprocess": StageCost(case_s=180.0, fixed_s=40.0, case_peak_mb=10600.0, main_peak_mb=1900.0, cases_measured=3),
    "evaluate": StageCost(case_s=30.0, fixed_s=6.0, case_peak_mb=4000.0, main_peak_mb=700.0, cases_measured=3),
}
L_K3 = GpuNetwork((GpuRun(True, 1.0, 0.35, 16000.0, 17000.0), GpuRun(False, 0.7, 0.3, 30000.0, 32000.0)), 120.0, "kits19")


def planted(path: Path) -> Path:
    return write_calibration(Calibration({"kits19": dict(KITS)}, "NVIDIA A100-SXM4-40GB", 40_000.0,
                                         {"MedNeXt-L_k3": L_K3}, {"host": "test"}, "now"), path)


def paper_with(calibration: Path) -> dict:
    config = load_workflow_config(REPO / "config" / "paper.yaml")
    config["calibration"] = str(calibration)
    return config


def test_a_written_calibration_reads_back(tmp_path: Path) -> None:
    read = read_calibration(planted(tmp_path / "calibration.yaml"))
    assert read.stage("kits19", "plan_and_preprocess") == KITS["plan_and_preprocess"]
    assert read.network("MedNeXt-L_k3") == L_K3 and read.gpu_memory_mb == 40_000.0


def test_a_calibration_of_another_version_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "calibration.yaml"
    path.write_text("version: 99\n")
    with pytest.raises(CalibrationError, match=str(path)):
        read_calibration(path)


def test_without_a_calibration_planning_caps_its_workers_to_its_memory(tmp_path: Path) -> None:
    config = paper_with(tmp_path / "absent.yaml")
    request = res.plan_request("kits19", config)
    # 8 workers requested; (32 GB - 2.5 GB for the main process) / 14 GB per worker = 2 workers
    assert config["planning"]["processes"] == 8 and request == res.JobRequest(2, 32000, 720, False)


def test_a_calibration_sets_memory_workers_and_time_from_measurement(tmp_path: Path) -> None:
    config = paper_with(planted(tmp_path / "calibration.yaml"))
    margin, safety = 1.25, 1.2
    plan = res.plan_request("kits19", config)
    worker, main = 10600 * margin, 1900 * margin
    workers = int((32000 - main) // worker)  # 2 of the config's 8 fit 32 GB
    assert plan.cpus == workers == 2 and plan.calibrated
    assert plan.mem_mb == math.ceil(main + workers * worker)
    assert plan.runtime_min == math.ceil((40 + 180 * 210 / workers) * safety / 60)
    evaluate = res.evaluate_request("kits19", config)
    # a fold: ceil(210 / 5) = 42 cases over the config's 4 workers
    assert evaluate.mem_mb == math.ceil((700 + 4 * 4000) * margin)
    assert evaluate.runtime_min == max(10, math.ceil((6 + 30 * 42 / 4) * safety / 60))
    assert res.prepare_request("kits19", config).mem_mb == math.ceil(5600 * margin)
    # a dataset the calibration does not hold keeps the defaults
    assert not res.plan_request("btcv", config).calibrated


def test_a_gpu_calibration_times_the_training_and_gpu_hours_prints_it_beside_the_estimate(tmp_path: Path) -> None:
    config = paper_with(planted(tmp_path / "calibration.yaml"))
    # auto: 32 GB reserved without checkpointing x 1.15 = 36.8 GB fits 40 GB, so the run without it is used;
    # plus the final validation of the largest dataset's fold (BraTS21: ceil(1251 / 5) cases x 120 s)
    hours = 1000 * (250 * 0.7 + 50 * 0.3) / 3600 + math.ceil(1251 / 5) * 120.0 / 3600
    assert res.measured_training_hours("MedNeXt-L_k3", config) == pytest.approx(hours)
    assert res.train_runtime_minutes("MedNeXt-L_k3", config) == 72 * 60  # still capped per attempt
    table = res.gpu_hours_table([res.Run("kits19", "MedNeXt-L_k3", 0)], config)
    assert table.loc[0, "measured_h_per_run"] == pytest.approx(hours)
    assert table.loc[0, "hours_per_run"] == pytest.approx(267 * 1000 / 3600)  # the paper's 267 s/epoch: the estimate


def _job_resources(dry_run: str, rule: str) -> str:
    block = next(b for b in dry_run.split("\n\n") if f"rule {rule}:" in b)
    return block


@pytest.mark.slow
def test_the_calibration_changes_the_dry_run_resources_of_the_dag(tmp_path: Path) -> None:
    """One fold of KiTS19, planned by Snakemake with the SLURM profile and a calibration (~25 s)."""
    calibration = planted(tmp_path / "calibration.yaml")
    dry_run = run_snakemake("results/kits19/MedNeXt-B_k3/fold_0/metrics.csv", "-n", "--forceall", "--profile", "slurm",
                            "--cores", "16", "--config", f"calibration={calibration}").stdout
    config = paper_with(calibration)
    plan, evaluate = res.plan_request("kits19", config), res.evaluate_request("kits19", config)
    uncalibrated = res.plan_request("kits19", paper_with(tmp_path / "absent.yaml"))
    assert (plan.mem_mb, plan.runtime_min) != (uncalibrated.mem_mb, uncalibrated.runtime_min)
    block = _job_resources(dry_run, "plan_and_preprocess")
    assert f"mem_mb={plan.mem_mb}," in block and f"runtime={plan.runtime_min}" in block
    assert f"--num-processes {plan.cpus} " in block
    assert f"mem_mb={evaluate.mem_mb}," in _job_resources(dry_run, "evaluate") and evaluate.mem_mb != 16000
    assert re.search(rf"mem_mb={math.ceil(5600 * 1.25)},", _job_resources(dry_run, "prepare_dataset"))
