"""The files each workflow target asks for, computed from the config and the registries."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from mednext.ablations import ABLATIONS, get_ablation
from mednext.data.registry import get_dataset
from mednext.workflow.grid import Run, ablation_runs, main_runs
from mednext.workflow.layout import Layout


def ablation_targets() -> list[str]:
    """One Snakemake target per ablation of :data:`mednext.ablations.ABLATIONS` (``ablation_<key>``)."""
    return [ablation.target for ablation in ABLATIONS]


def metrics_files(runs: list[Run], layout: Layout) -> list[str]:
    return [layout.metrics(run) for run in runs]


def all_metrics(config: Mapping[str, Any]) -> list[str]:
    """Metrics of every run the tables use (main grid and ablations)."""
    layout = Layout.from_config(config)
    return metrics_files(sorted(set(main_runs(config)) | set(ablation_runs(config))), layout)


def ablation_metrics(config: Mapping[str, Any], target: str) -> list[str]:
    """Metrics a single ablation target needs: its network and the one it is compared with on the
    ablation datasets, all folds (KeyError for an unknown target)."""
    networks = get_ablation(target).networks
    datasets = config.get("ablations", {}).get("datasets", [])
    runs = [Run(d, n, f) for d in datasets for n in networks for f in config["folds"]]
    return metrics_files(runs, Layout.from_config(config))


def parent_checkpoints(run: Run, config: Mapping[str, Any]) -> list[str]:
    """The UpKern parent's final checkpoint of ``run`` (empty if it trains from scratch)."""
    parent = run.parent()
    return [] if parent is None else [Layout.from_config(config).checkpoint(parent)]


def evaluation_region_args(dataset: str) -> list[str]:
    """``--regions NAME=L1,L2 ...`` arguments of the evaluate command for ``dataset``."""
    regions = get_dataset(dataset).regions
    return ["--regions", *(f"{r.name}={','.join(map(str, r.labels))}" for r in regions)]


def prepare_dataset_args(dataset: str, layout: Layout) -> str:
    """Arguments of ``mednext-repro data`` that put ``dataset`` into the nnU-Net raw folder: an own
    nnU-Net raw folder is linked (``link-raw``), a registry dataset downloaded and converted (``prepare``)."""
    spec = get_dataset(dataset)
    if spec.nnunet_raw is not None:
        return shlex.join(["link-raw", spec.nnunet_raw, "--raw-root", str(layout.raw)])
    return shlex.join(["prepare", "--dataset", spec.key, "--downloads", str(layout.downloads), "--raw-root", str(layout.raw)])
