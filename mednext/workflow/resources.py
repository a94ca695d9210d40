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
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from mednext.ablations import ablation_of_network
from mednext.networks import get_network
from mednext.workflow.grid import Run

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
}


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
    """GPU hours of one training at the config's epochs and iterations."""
    training = config["training"]
    scale = training["epochs"] * training["iterations_per_epoch"] / (PAPER_EPOCHS * PAPER_ITERATIONS)
    return paper_gpu_hours(network, config) * scale


def train_runtime_minutes(network: str, config: Mapping[str, Any], attempt: int = 1) -> int:
    """SLURM runtime of every attempt on a GPU: the estimate x ``runtime_safety``, capped at ``max_runtime_h``.

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


def gpu_hours_table(runs: list[Run], config: Mapping[str, Any]) -> "pd.DataFrame":
    """Per network over ``runs``: jobs, hours per training and in total, attempts, Revisited's hours.

    ``revisited_a100_h`` is Revisited's measured hours per paper-length training where it timed the
    network (empty otherwise), for comparison with ``hours_per_run``; sorted by total hours.
    """
    rows: dict[str, dict[str, Any]] = {}
    for run in runs:
        row = rows.setdefault(run.network, {
            "network": run.network, "jobs": 0, "hours_per_run": training_hours(run.network, config), "gpu_hours": 0.0,
            "attempts": attempts_needed(run.network, config) if config.get("device", "cuda") == "cuda" else 1,
            "revisited_a100_h": REVISITED_A100_HOURS.get(run.network, float("nan")),
        })
        row["jobs"] += 1
        row["gpu_hours"] += row["hours_per_run"]
    import pandas as pd

    columns = ["network", "jobs", "hours_per_run", "gpu_hours", "attempts", "revisited_a100_h"]
    table = pd.DataFrame(list(rows.values()), columns=columns)
    return table.sort_values("gpu_hours", ascending=False, ignore_index=True)
