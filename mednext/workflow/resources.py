"""Cluster resources per training job, the retry policy, and the grid's GPU-hour estimate.

Hours for 1000 epochs x 250 iterations on **one NVIDIA A100 40 GB** (:data:`REFERENCE_GPU`):

- MedNeXt: the paper's seconds per training epoch (Table 1 left, ``paper_tables/reported/
  table1_configs.csv``). The paper does not name the GPU; its author states an A100 40 GB
  (MIC-DKFZ/MedNeXt#14). Cross-check: "nnU-Net Revisited" measured MedNeXt L k3 68 h and L k5 233 h on
  an A100 PCIe 40 GB, against 74 h and 204 h here (:data:`REVISITED_A100_HOURS`).
- Baselines that Revisited timed: its A100 hours (nnU-Net 9 h, SwinUNETR 15 h, nnFormer 8 h).
- Other networks: their size class, calibrated on those figures (medium = nnU-Net's 9 h, large =
  SwinUNETR's 15 h, xlarge = MedNeXt L k3's 68 h).

Per attempt a training job asks for the estimate x ``runtime_safety``, capped at the partition limit
``max_runtime_h``; a training longer than the cap ends each attempt by SLURM's time-limit SIGTERM, saves
``checkpoint_latest`` and resumes on the next attempt (:func:`attempts_needed`, :func:`retries_needed`).
A config's ``resources`` key overrides any of these.

With a calibration file (:mod:`mednext.workflow.calibration`, written by ``mednext-repro rehearse``)
the requests come from measurement: memory is the measured peak x ``memory_margin``; planning runs
as many workers as fit its memory request at the measured worker peak; CPU jobs ask for their
predicted time x ``runtime_safety``; a training rehearsed on a GPU asks for its measured seconds per
iteration x the schedule x ``runtime_safety``, capped at ``max_runtime_h``. Without one, planning
still caps its workers so that ``workers x planning_worker_mem_mb`` fits its request: one nnU-Net
preprocessing worker on the largest BTCV case peaks at 12.6 GB (docs/sources.md#rehearsal-figures), so the paper
config's 8 workers in 32 GB become 2, with ``plan_runtime_min`` for the time they then take.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mednext.ablations import ablation_of_network
from mednext.data.registry import get_dataset
from mednext.networks import get_network
from mednext.workflow.calibration import Calibration, GpuRun, load_calibration
from mednext.workflow.grid import Run

if TYPE_CHECKING:
    import pandas as pd

PAPER_EPOCHS, PAPER_ITERATIONS = 1000, 250
REPORTED_CONFIGS = Path(__file__).resolve().parents[2] / "paper_tables" / "reported" / "table1_configs.csv"

#: The GPU every hour estimate refers to.
REFERENCE_GPU = "NVIDIA A100 40 GB"
#: Hours per training on an A100 PCIe 40 GB, "nnU-Net Revisited" (MIC-DKFZ/nnUNet
#: documentation/resenc_presets.md; docs/sources.md#revisited-hours).
REVISITED_A100_HOURS: dict[str, float] = {
    "nnUNet": 9.0, "SwinUNETR": 15.0, "nnFormer": 8.0, "MedNeXt-L_k3": 68.0, "MedNeXt-L_k5": 233.0,
}
#: Attempts beyond those the time limit needs, for failures that are not time-outs (a node lost, a
#: transient file-system error); each resumes from checkpoint_latest.
SPARE_ATTEMPTS = 1

DEFAULT_RESOURCES: dict[str, Any] = {
    # Baselines Revisited did not time, by size class (small: MedNeXt S/B use the paper's hours anyway).
    "hours_per_size_class": {"small": 9.0, "medium": 9.0, "large": 15.0, "xlarge": 68.0},
    "hours_per_network": {k: v for k, v in REVISITED_A100_HOURS.items() if not k.startswith("MedNeXt")},
    "mem_mb_per_size_class": {"small": 32000, "medium": 48000, "large": 64000, "xlarge": 96000},
    "cpus_per_gpu": 8,          # nnU-Net's data-augmentation workers
    "max_runtime_h": 72,        # a typical partition limit; longer trainings resume on the next attempt
    "runtime_safety": 1.2,      # covers Revisited's 233 h for L k5 (paper: 204 h x 1.2 = 245 h)
    "cpu_runtime_min": 60,      # CPU training (demo) per attempt
    "cpu_mem_mb": 16000,        # CPU training and evaluation jobs
    "data_runtime_min": 360,    # download/convert and planning/preprocessing, per attempt
    "data_mem_mb": 32000,
    "plan_mem_mb": None,        # planning/preprocessing job; None: data_mem_mb
    "plan_runtime_min": 720,    # per attempt; KiTS19 at 2 workers: up to 6.4 h (docs/sources.md#rehearsal-figures)
    # One nnU-Net preprocessing worker without a calibration: the paper datasets' largest cases peak at
    # 12.6 GB (BTCV, 650x500x500 mm, slices upsampled 3.3x to 1 mm), 12.2 GB (AMOS22), 10.9 GB (KiTS19),
    # 2.4 GB (BraTS21) in a rehearsal (docs/sources.md#rehearsal-figures); x 1.1. The planning process itself holds 2.0 GB for one
    # channel (nnU-Net's fingerprint pools 10^8 intensity samples per channel), 5.6 GB for BraTS21's four,
    # whose 2.4 GB workers leave that room: 2 workers fit 32 GB on every paper dataset.
    "planning_worker_mem_mb": 14000,
    "planning_main_mem_mb": 2500,
    "memory_margin": 1.25,      # calibrated memory = measured peak x this
    "gpu_memory_margin": 1.15,  # gradient_checkpointing auto: off when the rehearsed peak x this fits the GPU
    "min_runtime_min": 10,      # a calibrated CPU job asks for at least this (scheduler and start-up slack)
    "rehearsal_gpu_runtime_min": 240,  # the GPU rehearsal: every network of the paper grid, twice for M and L
    "rehearsal_gpu_mem_mb": 64000,
}
#: nnU-Net's cross-validation: every fold validates a fifth of the training cases.
NNUNET_FOLDS = 5


@lru_cache(maxsize=1)
def _mednext_paper_hours() -> dict[str, float]:
    with REPORTED_CONFIGS.open(newline="") as handle:  # csv, not pandas: this runs at every DAG parse
        rows = list(csv.DictReader(handle))
    return {f"MedNeXt-{r['variant']}_k{r['kernel']}": float(r["secs_per_train_epoch"]) * PAPER_EPOCHS / 3600 for r in rows}


def merged_resources(config: Mapping[str, Any]) -> dict[str, Any]:
    """:data:`DEFAULT_RESOURCES` updated by the config's ``resources`` mapping (one level deep)."""
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULT_RESOURCES.items()}
    for key, value in (config.get("resources") or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


def paper_gpu_hours(network: str, config: Mapping[str, Any]) -> float:
    """Estimated GPU hours of one paper-length training (1000 x 250) of ``network``."""
    resources = merged_resources(config)
    overrides = resources.get("hours_per_network", {})
    if network in overrides:
        return float(overrides[network])
    ablation = ablation_of_network(network)
    base = network if ablation is None else ablation.modifies  # an ablation trains like the network it changes
    paper = _mednext_paper_hours()
    if base in paper:
        return paper[base]
    return float(resources["hours_per_size_class"][get_network(network).size_class])


def training_hours(network: str, config: Mapping[str, Any]) -> float:
    """GPU hours of one training at the config's epochs and iterations: measured on the rehearsed GPU
    when the calibration has the network (:func:`measured_training_hours`), else the A100 estimate."""
    measured = measured_training_hours(network, config)
    return estimated_training_hours(network, config) if measured is None else measured


def estimated_training_hours(network: str, config: Mapping[str, Any]) -> float:
    """Estimated A100 hours of one training at the config's epochs and iterations (module docstring)."""
    training = config["training"]
    scale = training["epochs"] * training["iterations_per_epoch"] / (PAPER_EPOCHS * PAPER_ITERATIONS)
    return paper_gpu_hours(network, config) * scale


def rehearsed_gpu_run(network: str, config: Mapping[str, Any]) -> GpuRun | None:
    """The rehearsed GPU run of ``network`` with the gradient checkpointing its training will use."""
    from mednext.nnunet.checkpointing_choice import choose_gradient_checkpointing

    calibration = load_calibration(config)
    if calibration is None or config.get("device", "cuda") != "cuda" or calibration.network(network) is None:
        return None
    rehearsed = calibration.network(network)
    off = rehearsed.run(False)
    choice = choose_gradient_checkpointing(network, config["training"].get("gradient_checkpointing", "auto"),
                                           None if off is None else off.reserved_mb, calibration.gpu_device,
                                           calibration.gpu_memory_mb, merged_resources(config)["gpu_memory_margin"])
    return rehearsed.run(choice.enabled)


def gpu_rehearsal_record(network: str, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a training job of ``network`` receives about its GPU rehearsal (gradient_checkpointing ``auto``
    decides from it on the training's own GPU): device, its memory, the margin and the measured runs."""
    from dataclasses import asdict

    calibration = load_calibration(config)
    rehearsed = None if calibration is None else calibration.network(network)
    if rehearsed is None or config.get("device", "cuda") != "cuda":
        return None
    return {"device": calibration.gpu_device, "memory_mb": calibration.gpu_memory_mb,
            "margin": float(merged_resources(config)["gpu_memory_margin"]), "runs": [asdict(r) for r in rehearsed.runs]}


def measured_training_hours(network: str, config: Mapping[str, Any]) -> float | None:
    """Hours of one training on the rehearsed GPU: the schedule at the measured seconds per training and
    validation iteration, plus the final sliding-window validation of the largest dataset's fold."""
    run = rehearsed_gpu_run(network, config)
    if run is None:
        return None
    training = config["training"]
    seconds = training["epochs"] * (training["iterations_per_epoch"] * run.s_per_iteration
                                    + training["val_iterations"] * run.s_per_validation_iteration)
    predict_s = load_calibration(config).network(network).predict_s  # type: ignore[union-attr]
    if predict_s:
        largest = max(get_dataset(d).expected_training_cases for d in _datasets(config))
        seconds += math.ceil(largest / NNUNET_FOLDS) * predict_s
    return seconds / 3600


def _datasets(config: Mapping[str, Any]) -> list[str]:
    from mednext.workflow.grid import datasets_of

    return datasets_of(config)


def train_runtime_minutes(network: str, config: Mapping[str, Any], attempt: int = 1) -> int:
    """SLURM runtime of every attempt on a GPU: the hours (:func:`training_hours`, measured where the
    calibration has the network) x ``runtime_safety``, capped at ``max_runtime_h``.

    An attempt that hits the limit saves on SLURM's SIGTERM and the next attempt resumes from
    checkpoint_latest, so later attempts need no more time than the first (CPU runs, e.g. the demo,
    keep ``cpu_runtime_min`` x attempt).
    """
    resources = merged_resources(config)
    if config.get("device", "cuda") != "cuda":
        return int(resources["cpu_runtime_min"]) * attempt
    hours = training_hours(network, config) * resources["runtime_safety"]
    return int(math.ceil(min(hours, resources["max_runtime_h"]) * 60))


def attempts_needed(network: str, config: Mapping[str, Any]) -> int:
    """Attempts a GPU training needs at :func:`train_runtime_minutes` each, plus :data:`SPARE_ATTEMPTS`."""
    resources = merged_resources(config)
    hours = training_hours(network, config) * resources["runtime_safety"]
    return math.ceil(hours / resources["max_runtime_h"]) + SPARE_ATTEMPTS


def retries_needed(config: Mapping[str, Any]) -> int:
    """The ``retries`` a profile needs so the config's longest training can finish (Snakemake's is global)."""
    from mednext.workflow.grid import all_runs

    return max(attempts_needed(run.network, config) for run in all_runs(config)) - 1


def train_mem_mb(network: str, config: Mapping[str, Any]) -> int:
    """Host memory of a training job, by the network's size class."""
    resources = merged_resources(config)
    if config.get("device", "cuda") != "cuda":
        return int(resources["cpu_mem_mb"])
    return int(resources["mem_mb_per_size_class"][get_network(network).size_class])


def gpu_hours_table(runs: list[Run], config: Mapping[str, Any]) -> pd.DataFrame:
    """Per network over ``runs``: jobs, estimated hours per training and in total, attempts, Revisited's hours.

    ``hours_per_run``/``gpu_hours`` are the A100 estimates (module docstring). Where the calibration has
    the network, ``measured_h_per_run``/``measured_gpu_hours`` are its hours on the rehearsed GPU
    (columns present only then); ``attempts`` follows the measured hours where there are any.
    ``revisited_a100_h`` is Revisited's measured hours per paper-length training where it timed the
    network (empty otherwise), for comparison with ``hours_per_run``; sorted by estimated total hours.
    """
    rows: dict[str, dict[str, Any]] = {}
    for run in runs:
        measured = measured_training_hours(run.network, config)
        row = rows.setdefault(run.network, {
            "network": run.network, "jobs": 0, "hours_per_run": estimated_training_hours(run.network, config),
            "gpu_hours": 0.0, "measured_h_per_run": float("nan") if measured is None else measured,
            "measured_gpu_hours": float("nan") if measured is None else 0.0,
            "attempts": attempts_needed(run.network, config) if config.get("device", "cuda") == "cuda" else 1,
            "revisited_a100_h": REVISITED_A100_HOURS.get(run.network, float("nan")),
        })
        row["jobs"] += 1
        row["gpu_hours"] += row["hours_per_run"]
        if measured is not None:
            row["measured_gpu_hours"] += measured
    import pandas as pd

    columns = ["network", "jobs", "hours_per_run", "gpu_hours", "measured_h_per_run", "measured_gpu_hours",
               "attempts", "revisited_a100_h"]
    table = pd.DataFrame(list(rows.values()), columns=columns)
    if table["measured_h_per_run"].isna().all():
        table = table.drop(columns=["measured_h_per_run", "measured_gpu_hours"])
    return table.sort_values("gpu_hours", ascending=False, ignore_index=True)


# ----------------------------------------------------------------------------------------------
# CPU jobs: conversion, planning and preprocessing, evaluation


@dataclass(frozen=True)
class JobRequest:
    """What one CPU job asks SLURM for: CPUs (= worker processes), memory, minutes for its first
    attempt (later attempts ask for this x the attempt number), and whether a calibration set it."""

    cpus: int
    mem_mb: int
    runtime_min: int
    calibrated: bool


def dataset_cases(dataset: str) -> int:
    """Training cases of ``dataset`` (registry, or an own dataset's ``dataset.json``)."""
    return get_dataset(dataset).expected_training_cases


def _stage(config: Mapping[str, Any], dataset: str, stage: str) -> tuple[Calibration | None, Any]:
    calibration = load_calibration(config)
    return calibration, None if calibration is None else calibration.stage(dataset, stage)


def _minutes(seconds: float, resources: Mapping[str, Any]) -> int:
    return max(int(resources["min_runtime_min"]), int(math.ceil(seconds * resources["runtime_safety"] / 60)))


def plan_mem_mb_configured(config: Mapping[str, Any]) -> int:
    """The planning job's memory request before any calibration (``plan_mem_mb``, else ``data_mem_mb``)."""
    resources = merged_resources(config)
    return int(resources["plan_mem_mb"] if resources.get("plan_mem_mb") else resources["data_mem_mb"])


def prepare_request(dataset: str, config: Mapping[str, Any]) -> JobRequest:
    """Download and conversion (one process): calibrated memory; the time never below ``data_runtime_min``,
    as the download is not rehearsed."""
    resources = merged_resources(config)
    _, cost = _stage(config, dataset, "prepare_dataset")
    if cost is None:
        return JobRequest(1, int(resources["data_mem_mb"]), int(resources["data_runtime_min"]), False)
    seconds = cost.fixed_s + cost.case_s * dataset_cases(dataset)
    return JobRequest(1, int(math.ceil(cost.case_peak_mb * resources["memory_margin"])),
                      max(int(resources["data_runtime_min"]), _minutes(seconds, resources)), True)


def plan_request(dataset: str, config: Mapping[str, Any]) -> JobRequest:
    """nnU-Net fingerprint, planning and preprocessing with up to ``planning.processes`` workers.

    Workers are capped so that main process + workers x one worker's peak fit the memory request
    (measured peaks x ``memory_margin`` with a calibration, ``planning_*_mem_mb`` without); with a
    calibration the request is that sum, at least one worker's worth.
    """
    resources = merged_resources(config)
    wanted = int(config["planning"]["processes"])
    request = plan_mem_mb_configured(config)
    _, cost = _stage(config, dataset, "plan_and_preprocess")
    if cost is None:
        worker, main = float(resources["planning_worker_mem_mb"]), float(resources["planning_main_mem_mb"])
    else:
        margin = float(resources["memory_margin"])
        worker, main = cost.case_peak_mb * margin, cost.main_peak_mb * margin
    cases = dataset_cases(dataset)
    workers = max(1, min(wanted, cases, int((request - main) // worker) if worker > 0 else wanted))
    if cost is None:
        return JobRequest(workers, request, int(resources["plan_runtime_min"]), False)
    seconds = cost.fixed_s + cost.case_s * cases / workers
    return JobRequest(workers, int(math.ceil(main + workers * worker)), _minutes(seconds, resources), True)


def rehearsal_cpu_request(config: Mapping[str, Any], cases: int = 3) -> JobRequest:
    """The CPU rehearsal job: planning workers (at most one per case) that fit ``data_mem_mb`` at the
    uncalibrated worker peak; ``data_runtime_min`` (one dataset at K = 3 takes under 15 minutes on 2 cores)."""
    resources = merged_resources(config)
    memory = int(resources["data_mem_mb"])
    fit = int((memory - resources["planning_main_mem_mb"]) // resources["planning_worker_mem_mb"])
    workers = max(1, min(int(config["planning"]["processes"]), cases, fit))
    return JobRequest(workers, memory, int(resources["data_runtime_min"]), False)


def evaluate_request(dataset: str, config: Mapping[str, Any]) -> JobRequest:
    """Scoring one fold's validation cases with ``evaluation.workers`` processes."""
    resources = merged_resources(config)
    workers = int(config["evaluation"]["workers"])
    _, cost = _stage(config, dataset, "evaluate")
    if cost is None:
        return JobRequest(workers, int(resources["cpu_mem_mb"]), int(resources["cpu_runtime_min"]), False)
    cases = math.ceil(dataset_cases(dataset) / NNUNET_FOLDS)
    busy = max(1, min(workers, cases))
    margin = float(resources["memory_margin"])
    peak = cost.case_peak_mb if busy == 1 else cost.main_peak_mb + busy * cost.case_peak_mb
    seconds = cost.fixed_s + cost.case_s * cases / busy
    return JobRequest(workers, int(math.ceil(peak * margin)), _minutes(seconds, resources), True)
