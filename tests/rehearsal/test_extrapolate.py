"""Extrapolation from planted stage figures to the DAG's jobs, and the verdicts and fixes it prints."""

from __future__ import annotations

import math

import pytest

from mednext.rehearsal.extrapolate import (
    DOES_NOT_FIT,
    FITS,
    HEAD_NODE,
    NO_GPU,
    GpuFigures,
    Requested,
    failures,
    job_rows,
)
from mednext.rehearsal.stages import CaseFigure, StageMeasurement, stage_cost
from mednext.workflow.calibration import GpuNetwork, GpuRun
from mednext.workflow.config_source import load_workflow_config
from tests.workflow.conftest import REPO

CONFIG = load_workflow_config(REPO / "config" / "paper.yaml")
NO_GPU_FIGURES = GpuFigures(None, None, {}, NO_GPU)


def planning(worker_peak_mb: float = 9700.0, main_peak_mb: float = 1000.0, case_s: float = 60.0) -> StageMeasurement:
    """Three cases preprocessed by two workers: each case takes ``case_s`` worker-seconds (fingerprint
    + preprocessing); the largest case's worker peaks at ``worker_peak_mb``; 30 s outside the pool."""
    cases = []
    for i, peak in enumerate((worker_peak_mb / 4, worker_peak_mb / 2, worker_peak_mb)):
        cases.append(CaseFigure(f"case_{i}", case_s / 3, peak / 2, "", pid=100 + i % 2))
        cases.append(CaseFigure(f"case_{i}", 2 * case_s / 3, peak, "3d_fullres", pid=100 + i % 2))
    pool = 3 * case_s / 2  # two workers share three cases
    return StageMeasurement("plan_and_preprocess", "kits19", wall_s=30.0 + pool, peak_sum_mb=main_peak_mb + 1.5 * worker_peak_mb,
                            main_peak_mb=main_peak_mb, worker_peak_mb=worker_peak_mb, workers=2, cases=tuple(cases),
                            phases={"fingerprint": pool / 3, "planning": 5.0, "preprocess 3d_fullres": 2 * pool / 3})


def rows_for(measurement: StageMeasurement, requested: Requested):
    return job_rows([measurement], CONFIG, {(measurement.stage, measurement.dataset, ""): requested},
                    {"kits19": 210}, NO_GPU_FIGURES)


def test_stage_cost_splits_worker_seconds_per_case_from_the_rest() -> None:
    cost = stage_cost(planning(case_s=60.0))
    assert cost.case_s == pytest.approx(60.0)  # fingerprint + preprocessing of one case, one worker
    assert cost.fixed_s == pytest.approx(30.0)  # wall time outside the pool phases
    assert cost.case_peak_mb == 9700.0 and cost.main_peak_mb == 1000.0 and cost.cases_measured == 3


def test_eight_workers_of_a_large_ct_do_not_fit_32_gb() -> None:
    (row,) = rows_for(planning(), Requested(cpus=8, mem_mb=32000, runtime_min=360))
    # main 1.0 GB + 8 x 9.7 GB = 78.6 GB
    assert row.predicted_mem_mb == pytest.approx(1000 + 8 * 9700)
    assert row.verdict == DOES_NOT_FIT
    assert "8 workers x 9.7 GB" in row.problem and "> 32.0 GB requested" in row.problem
    # (32 - 1) GB / 9.7 GB = 3 workers fit
    assert "planning.processes: 3" in row.fix and "--set-resources plan_and_preprocess:mem_mb=" in row.fix
    assert row.failure_line().startswith("plan_and_preprocess kits19: 8 workers x 9.7 GB")
    assert failures([row]) == [row]


def test_a_request_below_one_worker_names_the_memory_fix_only() -> None:
    (row,) = rows_for(planning(), Requested(cpus=1, mem_mb=4000, runtime_min=720))
    assert row.verdict == DOES_NOT_FIT and "1 workers x 9.7 GB + main 1.0 GB = 10.7 GB > 4.0 GB requested" in row.problem
    assert "planning.processes" not in row.fix  # fewer workers cannot help: one alone needs more
    assert f"plan_and_preprocess:mem_mb={math.ceil(10700 * 1.25)}" in row.fix


def test_two_workers_fit_and_the_time_scales_with_the_case_count() -> None:
    (row,) = rows_for(planning(case_s=60.0), Requested(cpus=2, mem_mb=32000, runtime_min=360))
    assert row.predicted_mem_mb == pytest.approx(1000 + 2 * 9700)
    # 30 s once + 60 s x 210 cases / 2 workers = 6330 s
    assert row.predicted_runtime_min == pytest.approx(6330 / 60)
    assert row.verdict == FITS and not failures([row])
    # the config asks for 8 workers: the row says what they would have needed (1 + 8 x 9.7 GB)
    assert "planning.processes=8 capped to 2 workers: 8 x 9.7 GB + main = 78.6 GB would not fit 32.0 GB" in row.measured


def test_too_little_time_is_its_own_problem() -> None:
    (row,) = rows_for(planning(case_s=600.0), Requested(cpus=2, mem_mb=32000, runtime_min=360))
    # 30 + 600 x 105 = 63030 s = 1050.5 min > 360
    assert row.verdict == DOES_NOT_FIT and "1050 min for 210 cases with 2 workers > 360 min" in row.problem
    assert "--set-resources plan_and_preprocess:runtime=" in row.fix


def test_evaluation_scales_to_a_fold_and_its_workers() -> None:
    cases = tuple(CaseFigure(f"c{i}", 10.0, peak, rss_at_start_mb=700.0) for i, peak in enumerate((2000.0, 3000.0, 6000.0)))
    m = StageMeasurement("evaluate", "kits19", 35.0, 6000.0, 6000.0, 0.0, 0, cases)
    requested = {("evaluate", "kits19", ""): Requested(cpus=4, mem_mb=16000, runtime_min=60)}
    (row,) = job_rows([m], CONFIG, requested, {"kits19": 210}, NO_GPU_FIGURES)
    # a fold scores ceil(210 / 5) = 42 cases; 4 workers each may hold the largest case
    assert row.predicted_mem_mb == pytest.approx(700 + 4 * 6000)
    assert row.predicted_runtime_min == pytest.approx((5.0 + 10.0 * 42 / 4) / 60)
    assert row.verdict == DOES_NOT_FIT and "evaluation.workers: 2" in row.fix
    assert row.jobs == len(CONFIG["folds"])


def test_local_rules_run_on_the_head_node() -> None:
    m = StageMeasurement("results_tables", "all", 42.0, 800.0, 800.0, 0.0, 0)
    (row,) = job_rows([m], CONFIG, {}, {}, NO_GPU_FIGURES)
    assert row.verdict == HEAD_NODE and row.requested.local and not failures([row])


def test_training_rows_say_not_measured_without_a_gpu() -> None:
    requested = {("train", "", "MedNeXt-L_k3"): Requested(cpus=8, mem_mb=96000, runtime_min=4320, gpus=1, attempts=5)}
    (row,) = job_rows([], CONFIG, requested, {"kits19": 210}, NO_GPU_FIGURES,
                      {"MedNeXt-L_k3": (None, None, 74.2)})
    assert row.verdict == "not measured: no GPU" and row.measured.startswith("not measured: no GPU")
    assert row.predicted_runtime_min is None and row.predicted_gpu_mb is None  # never an invented figure
    assert not failures([row])


def test_training_rows_with_gpu_figures_check_memory_and_attempts() -> None:
    gpu = GpuFigures("NVIDIA A100-SXM4-40GB", 40_000.0,
                     {"MedNeXt-L_k3": GpuNetwork((GpuRun(True, 0.9, 0.3, 17_000.0, 18_000.0),))})
    requested = {("train", "", "MedNeXt-L_k3"): Requested(cpus=8, mem_mb=96000, runtime_min=4320, gpus=1, attempts=5)}
    (fits,) = job_rows([], CONFIG, requested, {"kits19": 210}, gpu, {"MedNeXt-L_k3": (70.0, 18_000.0, 74.2)})
    assert fits.verdict == FITS and fits.predicted_runtime_min == pytest.approx(70 * 60)
    (too_big,) = job_rows([], CONFIG, requested, {"kits19": 210}, gpu, {"MedNeXt-L_k3": (70.0, 38_000.0, 74.2)})
    assert too_big.verdict == DOES_NOT_FIT and "gradient_checkpointing: on" in too_big.fix
    (too_long,) = job_rows([], CONFIG, requested, {"kits19": 210}, gpu, {"MedNeXt-L_k3": (400.0, 18_000.0, 74.2)})
    # 400 h > 5 attempts x 72 h; 6 attempts would do
    assert too_long.verdict == DOES_NOT_FIT and f"retries: {math.ceil(400 * 60 / 4320)}" in too_long.fix
