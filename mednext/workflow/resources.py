"""Cluster resources per training job and the grid's GPU-hour estimate.

Hours for 1000 epochs x 250 iterations on one GPU: MedNeXt from the paper's seconds per training
epoch (Supplementary 6.2, ``paper_tables/reported/table1_configs.csv``); other networks from their size
class (nnU-Net's 9 h and SwinUNETR's 15 h on an A100 in "nnU-Net Revisited",
shared/reference/nnunet_v2_and_monai.md §2, set the small/medium scale). A config's ``resources`` key
overrides any of these.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from mednext.networks import get_network
from mednext.workflow.grid import Run

PAPER_EPOCHS, PAPER_ITERATIONS = 1000, 250
REPORTED_CONFIGS = Path(__file__).resolve().parents[2] / "paper_tables" / "reported" / "table1_configs.csv"

DEFAULT_RESOURCES: dict[str, Any] = {
    "hours_per_size_class": {"small": 12.0, "medium": 24.0, "large": 48.0, "xlarge": 72.0},
    "mem_mb_per_size_class": {"small": 32000, "medium": 48000, "large": 64000, "xlarge": 96000},
    "cpus_per_gpu": 8,          # nnU-Net's data-augmentation workers
    "max_runtime_h": 72,        # a typical partition limit; longer trainings resume on the next attempt
    "runtime_safety": 1.2,
    "cpu_runtime_min": 60,      # CPU training (demo) per attempt
    "cpu_mem_mb": 16000,        # CPU training and evaluation jobs
    "data_runtime_min": 360,    # download/convert and planning/preprocessing, per attempt
    "data_mem_mb": 32000,
}


@lru_cache(maxsize=1)
def _mednext_paper_hours() -> dict[str, float]:
    table = pd.read_csv(REPORTED_CONFIGS)
    return {f"MedNeXt-{r.variant}_k{r.kernel}": r.secs_per_train_epoch * PAPER_EPOCHS / 3600 for r in table.itertuples()}


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
    base = re.sub(r"_(standard_resampling|scratch|twice)$", "", network)  # ablations train like their base
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
    """SLURM runtime of attempt ``attempt``: the estimate with a margin, growing per attempt, capped.

    An attempt that hits the cap ends by timeout and the next attempt resumes from checkpoint_latest.
    """
    resources = merged_resources(config)
    if config.get("device", "cuda") != "cuda":
        return int(resources["cpu_runtime_min"]) * attempt
    hours = training_hours(network, config) * resources["runtime_safety"] * attempt
    return int(math.ceil(min(hours, resources["max_runtime_h"]) * 60))


def train_mem_mb(network: str, config: Mapping[str, Any]) -> int:
    """Host memory of a training job, by the network's size class."""
    resources = merged_resources(config)
    if config.get("device", "cuda") != "cuda":
        return int(resources["cpu_mem_mb"])
    return int(resources["mem_mb_per_size_class"][get_network(network).size_class])


def gpu_hours_table(runs: list[Run], config: Mapping[str, Any]) -> pd.DataFrame:
    """GPU hours per network over ``runs`` (one row per network, plus ``jobs``), sorted by hours."""
    rows: dict[str, dict[str, float]] = {}
    for run in runs:
        row = rows.setdefault(run.network, {"network": run.network, "jobs": 0, "gpu_hours": 0.0})
        row["jobs"] += 1
        row["gpu_hours"] += training_hours(run.network, config)
    table = pd.DataFrame(list(rows.values()), columns=["network", "jobs", "gpu_hours"])
    return table.sort_values("gpu_hours", ascending=False, ignore_index=True)
