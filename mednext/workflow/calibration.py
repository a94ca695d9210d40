"""The calibration file: what a rehearsal measured, read back by the workflow's resources.

``mednext-repro rehearse`` writes it (path: the config's ``calibration`` key, default
``rehearsal/calibration.yaml``). It holds measurements, not requests: per dataset and CPU stage the
seconds per case, the seconds once per job, and the peak memory of one case's process (a worker's,
for a stage with a worker pool) and of the job's main process; per network, when a GPU was
rehearsed, seconds per training iteration and peak GPU memory with and without gradient
checkpointing, and one sliding-window prediction. :mod:`mednext.workflow.resources` turns them into
each job's request with the config's own settings (workers, epochs, margins), so changing the config
changes the requests without a new rehearsal.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mednext.atomic import atomic_write_text

VERSION = 1
#: Where a config without a ``calibration`` key keeps it (relative to the directory the workflow runs in).
DEFAULT_CALIBRATION = "rehearsal/calibration.yaml"
#: The CPU stages a calibration can hold per dataset, named as the DAG's rules.
CPU_STAGES: tuple[str, ...] = ("prepare_dataset", "plan_and_preprocess", "evaluate")


class CalibrationError(ValueError):
    """A calibration file that cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class StageCost:
    """One CPU stage of one dataset: time per case, time once per job, and peak memory (MB).

    ``case_peak_mb`` is the peak of the process that handles one case (a worker of a pool, or the job
    itself for a sequential stage); ``main_peak_mb`` the job's main process when cases run in workers.
    """

    case_s: float
    fixed_s: float
    case_peak_mb: float
    main_peak_mb: float = 0.0
    cases_measured: int = 0


@dataclass(frozen=True)
class GpuRun:
    """Training iterations of one network at the paper's patch and batch on one GPU."""

    gradient_checkpointing: bool
    s_per_iteration: float
    s_per_validation_iteration: float
    max_allocated_mb: float
    reserved_mb: float


@dataclass(frozen=True)
class GpuNetwork:
    """A network's GPU figures: its training runs (recipe setting, and checkpointing off where the
    recipe turns it on) and one sliding-window prediction of the largest rehearsed case."""

    runs: tuple[GpuRun, ...]
    predict_s: float | None = None
    dataset: str = ""

    def run(self, gradient_checkpointing: bool) -> GpuRun | None:
        return next((r for r in self.runs if r.gradient_checkpointing == gradient_checkpointing), None)


@dataclass(frozen=True)
class Calibration:
    """Everything a rehearsal measured; ``path`` is the file it was read from."""

    datasets: dict[str, dict[str, StageCost]] = field(default_factory=dict)
    gpu_device: str | None = None
    gpu_memory_mb: float | None = None
    networks: dict[str, GpuNetwork] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    written_utc: str = ""
    path: Path | None = None

    def stage(self, dataset: str, stage: str) -> StageCost | None:
        return self.datasets.get(dataset, {}).get(stage)

    def network(self, name: str) -> GpuNetwork | None:
        return self.networks.get(name)

    def to_yaml(self) -> str:
        data = {
            "version": VERSION, "written_utc": self.written_utc, "host": self.host,
            "datasets": {d: {s: asdict(c) for s, c in stages.items()} for d, stages in sorted(self.datasets.items())},
            "gpu": None if self.gpu_device is None else {
                "device": self.gpu_device, "memory_mb": self.gpu_memory_mb,
                "networks": {n: {"dataset": g.dataset, "predict_s": g.predict_s, "runs": [asdict(r) for r in g.runs]}
                             for n, g in sorted(self.networks.items())},
            },
        }
        header = ("# Measured by `mednext-repro rehearse`; the workflow's resources read it "
                  "(mednext/workflow/resources.py).\n# Times in seconds, memory in MB (peak RSS; GPU: torch's peak).\n")
        return header + yaml.safe_dump(data, sort_keys=False)


def write_calibration(calibration: Calibration, path: str | Path) -> Path:
    """Write ``calibration`` to ``path`` (temp file + rename) and return the path."""
    return atomic_write_text(path, calibration.to_yaml())


def _require(mapping: Any, key: str, path: Path, where: str) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise CalibrationError(f"{path}: {where} has no {key!r}")
    return mapping[key]


def read_calibration(path: str | Path) -> Calibration:
    """Read a calibration file; :class:`CalibrationError` naming the file when it is malformed."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise CalibrationError(f"{path}: cannot read the calibration ({error})") from None
    if not isinstance(data, Mapping) or data.get("version") != VERSION:
        found = data.get("version") if isinstance(data, Mapping) else type(data).__name__
        raise CalibrationError(f"{path}: not a calibration file of version {VERSION} (found {found!r}); "
                               f"rerun `mednext-repro rehearse`")
    try:
        datasets = {
            str(d): {str(s): StageCost(**{k: float(v) if k != "cases_measured" else int(v) for k, v in cost.items()})
                     for s, cost in (stages or {}).items()}
            for d, stages in (data.get("datasets") or {}).items()
        }
        gpu = data.get("gpu")
        networks: dict[str, GpuNetwork] = {}
        device = memory = None
        if gpu:
            device = str(_require(gpu, "device", path, "gpu"))
            memory = float(_require(gpu, "memory_mb", path, "gpu"))
            for name, entry in (gpu.get("networks") or {}).items():
                runs = tuple(GpuRun(**run) for run in _require(entry, "runs", path, f"gpu network {name}"))
                predict = entry.get("predict_s")
                networks[str(name)] = GpuNetwork(runs, None if predict is None else float(predict), str(entry.get("dataset", "")))
    except (TypeError, ValueError) as error:
        raise CalibrationError(f"{path}: malformed entry ({error})") from None
    unknown = sorted({s for stages in datasets.values() for s in stages} - set(CPU_STAGES))
    if unknown:
        raise CalibrationError(f"{path}: unknown stages {unknown}; expected {list(CPU_STAGES)}")
    return Calibration(datasets, device, memory, networks, dict(data.get("host") or {}), str(data.get("written_utc", "")), path)


def calibration_path(config: Mapping[str, Any]) -> Path:
    """The calibration file the config names (``calibration``), or the default one."""
    return Path(str(config.get("calibration") or DEFAULT_CALIBRATION))


_CACHE: dict[tuple[str, int], Calibration] = {}


def load_calibration(config: Mapping[str, Any]) -> Calibration | None:
    """The config's calibration if the file exists (read once per modification), else None."""
    path = calibration_path(config)
    try:
        stamp = (os.fspath(path.resolve()), path.stat().st_mtime_ns)
    except OSError:
        return None
    if stamp not in _CACHE:
        _CACHE[stamp] = read_calibration(path)
    return _CACHE[stamp]
