"""Run every CPU stage of the configured grid on a few real-size cases per dataset, measured.

Per dataset of the config: K cases (default 3: the smallest, the median and the largest by voxels at
the planned spacing) from

1. the user's own nnU-Net raw folder (a config ``datasets`` entry with ``nnunet_raw``),
2. the registry dataset's downloaded source tree (``<downloads>/<key>/source``, what ``mednext-repro
   data download`` unpacks) when it is there,
3. the dataset's generator (the synthetic demo set), or
4. stand-ins written at the dataset's real geometry (:mod:`mednext.data.standins`).

Each stage runs as its own process, the project's own command (:mod:`mednext.rehearsal_probe`), with
the config's own settings, in a scratch nnU-Net tree under the output folder: conversion (or
linking and validating an own folder), nnU-Net fingerprint + planning + preprocessing with
``planning.processes`` workers (at most ``max_workers`` here), the 5-fold splits of the full case
count, and evaluation of every region with the config's spacing modes and tolerance (HD95 and
surface Dice on the native grid). Then the summaries and tables run once on metrics of the full
grid's size. The scratch data of a dataset is removed when its stages are done.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mednext.data.geometry import CaseGeometry, rank_by_planned_voxels
from mednext.data.layouts import find_cases
from mednext.data.registry import DatasetSpec, get_dataset
from mednext.rehearsal.measure import run_measured
from mednext.rehearsal.stages import StageMeasurement, from_run
from mednext.workflow.grid import ablation_runs, configurations_for, datasets_of, main_runs
from mednext.workflow.targets import evaluation_region_args

log = logging.getLogger(__name__)

PROBE = (sys.executable, "-m", "mednext.rehearsal_probe")
#: Spacing every dataset is planned at (§3.1); the rehearsal ranks cases by voxels at it.
PLANNED_SPACING = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class CaseSource:
    """Where a dataset's rehearsal cases come from: ``kind`` (own data, downloaded data, generated,
    stand-ins), a sentence for the report, and the chosen cases' geometries."""

    kind: str
    description: str
    geometries: tuple[tuple[str, CaseGeometry], ...]


def _header_geometry(path: Path) -> CaseGeometry:
    """Shape and spacing from a NIfTI header (no voxel is read)."""
    import nibabel as nib

    header = nib.load(str(path)).header
    shape = tuple(int(s) for s in header.get_data_shape()[:3])
    zooms = tuple(float(z) for z in header.get_zooms()[:3])
    return CaseGeometry(shape, zooms, path.name)  # axis order does not change voxel counts or extents


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    target.symlink_to(source.resolve())


def _own_cases(spec: DatasetSpec, k: int, root: Path) -> tuple[CaseSource, Path]:
    """K cases of an own nnU-Net raw folder, linked into a folder of the same name with numTraining K."""
    folder = Path(spec.nnunet_raw)  # type: ignore[arg-type]
    meta = json.loads((folder / "dataset.json").read_text())
    ending = str(meta["file_ending"])
    labels = sorted(p for p in (folder / "labelsTr").iterdir() if p.name.endswith(ending))
    chosen = rank_by_planned_voxels([(p.name[: -len(ending)], _header_geometry(p)) for p in labels], k, PLANNED_SPACING)
    subset = root / "source" / folder.name
    for case, _ in chosen:
        _link(folder / "labelsTr" / f"{case}{ending}", subset / "labelsTr" / f"{case}{ending}")
        for channel in range(len(spec.channel_names)):
            name = f"{case}_{channel:04d}{ending}"
            _link(folder / "imagesTr" / name, subset / "imagesTr" / name)
    (subset / "dataset.json").write_text(json.dumps({**meta, "numTraining": len(chosen)}, indent=2))
    return CaseSource("own", f"your nnU-Net raw folder {folder}", tuple(chosen)), subset


def _downloaded_cases(spec: DatasetSpec, source_tree: Path, k: int, root: Path) -> tuple[CaseSource, Path]:
    """K of the downloaded cases, linked into the dataset's own layout."""
    cases = find_cases(spec, source_tree)
    chosen = rank_by_planned_voxels([(c.case_id, _header_geometry(c.label)) for c in cases], k, PLANNED_SPACING)
    by_id = {c.case_id: c for c in cases}
    subset = root / "source"
    for index, (case_id, _) in enumerate(chosen):
        target = spec.case_files(subset, index)  # type: ignore[misc]
        for image, link in zip(by_id[case_id].images, target.images):
            _link(image, link)
        _link(by_id[case_id].label, target.label)
    return CaseSource("real", f"your downloaded data in {source_tree}", tuple(chosen)), subset


def _standin_cases(spec: DatasetSpec, k: int, root: Path, seed: int) -> tuple[CaseSource, Path]:
    from mednext.data.standins import write_standins

    if spec.geometry is None or spec.case_files is None:
        raise ValueError(f"{spec.key}: no geometry profile and no data on disk to rehearse with")
    geometries = spec.geometry.cases(k, PLANNED_SPACING)
    subset = root / "source"
    cases = write_standins(spec, geometries, subset, seed)
    description = f"stand-ins at the real geometry ({spec.geometry.source})"
    return CaseSource("stand-ins", description, tuple((c.case_id, g) for c, g in zip(cases, geometries))), subset


def choose_cases(spec: DatasetSpec, config: Mapping[str, Any], k: int, root: Path,
                 seed: int = 0) -> tuple[CaseSource, Path | None]:
    """The rehearsal cases of one dataset and the folder the preparation stage reads (None: generated)."""
    if spec.nnunet_raw is not None:
        return _own_cases(spec, k, root)
    if spec.generate is not None:
        geometry = spec.geometry.median if spec.geometry else CaseGeometry((1, 1, 1), (1, 1, 1))
        return CaseSource("generated", "the dataset's generator", tuple((f"case {i}", geometry) for i in range(k))), None
    downloaded = Path(config["paths"]["downloads"]) / spec.key / "source"
    if downloaded.is_dir():
        try:
            return _downloaded_cases(spec, downloaded, k, root)
        except Exception as error:  # noqa: BLE001 - an incomplete download falls back to stand-ins, said in the log
            log.warning("%s: cannot use %s (%s); rehearsing with stand-ins", spec.key, downloaded, error)
    return _standin_cases(spec, k, root, seed)


def say(text: str) -> None:
    """Progress on stdout, flushed (a rehearsal runs for minutes, often into a log file)."""
    print(text, flush=True)


@dataclass
class Rehearsal:
    """One rehearsal run: the config, K, the output folder and the local worker cap."""

    config: Mapping[str, Any]
    out_dir: Path
    k: int = 3
    max_workers: int | None = None
    seed: int = 0
    keep_work: bool = False
    progress: Callable[[str], None] = say

    @property
    def work(self) -> Path:
        return self.out_dir / "work"

    def _measure(self, stage: str, dataset: str, probe_stage: str, command: Sequence[str], env: Mapping[str, str],
                 source: str = "", note: str = "") -> StageMeasurement:
        logs = self.out_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        name = f"{stage}_{dataset}"
        run = run_measured([*PROBE, probe_stage, "--", *command], env=env, log=logs / f"{name}.log",
                           markers=self.work / "marks" / f"{name}.jsonl")
        measurement = from_run(stage, dataset, run, source=source, note=note)
        state = "ok" if run.returncode == 0 else f"FAILED (exit {run.returncode}, see {logs / f'{name}.log'})"
        self.progress(f"  {stage:<20} {dataset:<10} {run.wall_s:8.1f} s   peak (sum) {run.memory.peak_sum_mb / 1000:6.2f} GB   "
                      f"largest worker/case "
                      f"{max(measurement.worker_peak_mb, measurement.case_peak_mb()) / 1000:6.2f} GB  {state}")
        return measurement

    def planning_workers(self) -> int:
        wanted = int(self.config["planning"]["processes"])
        return max(1, min(wanted, self.max_workers or wanted, self.k))

    def dataset(self, key: str) -> tuple[CaseSource, list[StageMeasurement]]:
        """Every CPU stage of one dataset; its scratch data is removed afterwards (unless ``keep_work``)."""
        spec = get_dataset(key)
        root = self.work / key
        shutil.rmtree(root, ignore_errors=True)
        raw, preprocessed, results = root / "nnUNet_raw", root / "nnUNet_preprocessed", root / "nnUNet_results"
        for folder in (raw, preprocessed, results):
            folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "nnUNet_raw": str(raw.resolve()), "nnUNet_preprocessed": str(preprocessed.resolve()),
               "nnUNet_results": str(results.resolve())}
        self.progress(f"{key}: choosing {self.k} cases")
        source, source_dir = choose_cases(spec, self.config, self.k, root, self.seed)
        self.progress(f"{key}: {source.kind}: " + ", ".join(
            f"{g.shape} at {tuple(round(s, 3) for s in g.spacing)} mm" for _, g in source.geometries))
        measurements = [self._prepare(spec, source, source_dir, raw, env)]
        if measurements[-1].ok:
            measurements.append(self._plan(spec, env, source))
            self._keep_plans(spec, preprocessed)
            measurements.append(self._splits(spec, root, env))
            measurements.append(self._evaluate(spec, raw, root, env, source))
        if not self.keep_work:
            shutil.rmtree(root, ignore_errors=True)
        return source, measurements

    def _prepare(self, spec: DatasetSpec, source: CaseSource, source_dir: Path | None, raw: Path,
                 env: Mapping[str, str]) -> StageMeasurement:
        if spec.nnunet_raw is not None:
            command = ["data", "link-raw", str(source_dir), "--raw-root", str(raw)]
        elif spec.generate is not None:
            command = ["data", "prepare", "--dataset", spec.key, "--raw-root", str(raw), "--expected-cases", str(self.k)]
        else:
            command = ["data", "convert", "--dataset", spec.key, "--source", str(source_dir), "--raw-root", str(raw),
                       "--expected-cases", str(len(source.geometries)), "--overwrite"]
        note = "" if spec.nnunet_raw or spec.generate else "download not rehearsed"
        return self._measure("prepare_dataset", spec.key, "convert", command, env, source.kind, note)

    def _plan(self, spec: DatasetSpec, env: Mapping[str, str], source: CaseSource) -> StageMeasurement:
        planning = self.config["planning"]
        configurations = configurations_for(self.config, spec.key) or ["3d_fullres"]
        command = ["plan", "--dataset", spec.folder_name, "--plans-name", str(self.config["plans"]),
                   "--patch-size", *map(str, planning["patch_3d"]), "--patch-size-2d", *map(str, planning["patch_2d"]),
                   "--batch-size", str(planning["batch_3d"]), "--batch-size-2d", str(planning["batch_2d"]),
                   "--configurations", *configurations, "--num-processes", str(self.planning_workers())]
        return self._measure("plan_and_preprocess", spec.key, "plan", command, env, source.kind,
                             f"{self.planning_workers()} of planning.processes={planning['processes']} workers")

    def _keep_plans(self, spec: DatasetSpec, preprocessed: Path) -> None:
        """Keep the plans (the GPU stages build nnU-Net's network from them, possibly in another job)."""
        kept = self.out_dir / "plans" / spec.key
        kept.mkdir(parents=True, exist_ok=True)
        for name in (f"{self.config['plans']}.json", "dataset.json"):
            source = preprocessed / spec.folder_name / name
            if source.is_file():
                shutil.copyfile(source, kept / name)

    def _splits(self, spec: DatasetSpec, root: Path, env: Mapping[str, str]) -> StageMeasurement:
        """The splits of the full case count: the command reads only the label file names."""
        raw = root / "splits_raw"
        labels = raw / spec.folder_name / "labelsTr"
        labels.mkdir(parents=True, exist_ok=True)
        for i in range(spec.expected_training_cases):
            (labels / f"case_{i:05d}.nii.gz").touch()
        command = ["data", "splits", "--dataset", spec.folder_name, "--raw-root", str(raw),
                   "--preprocessed-root", str(root / "splits_preprocessed")]
        return self._measure("write_splits", spec.key, "splits", command, env, "case names",
                             f"{spec.expected_training_cases} case names")

    def _evaluate(self, spec: DatasetSpec, raw: Path, root: Path, env: Mapping[str, str], source: CaseSource) -> StageMeasurement:
        gt = raw / spec.folder_name / "labelsTr"
        pred = root / "predictions"
        write_shifted_predictions(gt, pred)
        evaluation = self.config["evaluation"]
        command = ["evaluate", "--gt", str(gt), "--pred", str(pred), "--out", str(root / "metrics.csv"),
                   "--dataset", spec.key, "--network", "rehearsal", "--fold", "0",
                   *evaluation_region_args(spec.key), "--spacing-modes", *evaluation["spacing_modes"],
                   "--tolerance", str(evaluation["tolerance_mm"]), "--workers", "1"]
        return self._measure("evaluate", spec.key, "evaluate", command, env, source.kind,
                             f"one process; the job runs evaluation.workers={evaluation['workers']}")

    def tables(self) -> list[StageMeasurement]:
        """Summaries and tables on per-case metrics of the full grid's size (one CSV per run)."""
        root = self.work / "tables"
        shutil.rmtree(root, ignore_errors=True)
        metrics = write_full_grid_metrics(self.config, root / "results", self.seed)
        self.progress(f"tables: {len(metrics)} metrics files of the full grid written")
        reported = Path(str(self.config["reported"]))
        if not reported.is_dir():
            reported = Path(__file__).resolve().parents[2] / str(self.config["reported"])
        env = dict(os.environ)
        measured = [
            self._measure("summarize", "all", "summarize",
                          ["summarize", *map(str, metrics), "--out-dir", str(root / "summary")], env, "full-size grid"),
            self._measure("results_tables", "all", "tables",
                          ["tables", *map(str, metrics), "--reported", str(reported), "--out-dir", str(root / "tables"),
                           "--spacing-mode", str(self.config["tables"]["spacing_mode"]),
                           "--folds", str(len(self.config["folds"]))], env, "full-size grid"),
        ]
        if not self.keep_work:
            shutil.rmtree(root, ignore_errors=True)
        return measured


def write_shifted_predictions(gt_dir: Path, pred_dir: Path, shift_voxels: int = 2) -> list[Path]:
    """A prediction per ground-truth label map: the same labels moved ``shift_voxels`` along the last
    two axes, on the same grid, so every region has a real surface distance to score."""
    import SimpleITK as sitk

    pred_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(gt_dir.glob("*.nii.gz")):
        image = sitk.ReadImage(str(path))
        array = sitk.GetArrayFromImage(image)
        moved = np.roll(array, (shift_voxels, shift_voxels), axis=(-2, -1))
        out = sitk.GetImageFromArray(moved)
        out.CopyInformation(image)
        sitk.WriteImage(out, str(pred_dir / path.name), True)
        written.append(pred_dir / path.name)
    return written


def write_full_grid_metrics(config: Mapping[str, Any], root: Path, seed: int = 0) -> list[Path]:
    """Tidy per-case metrics for every run the tables read (main grid and ablations), at the dataset's
    full case count: each fold scores a fifth of the cases; values are random but plausible."""
    import pandas as pd

    from mednext.evaluation.results import ROW_COLUMNS

    rng = np.random.default_rng(seed)
    evaluation = config["evaluation"]
    paths = []
    for run in sorted(set(main_runs(config)) | set(ablation_runs(config))):
        spec = get_dataset(run.dataset)
        cases = [f"{run.dataset}_{i:05d}" for i in range(spec.expected_training_cases) if i % 5 == run.fold % 5]
        regions = [r.name for r in spec.regions]
        rows = []
        for case in cases:
            for region in regions:
                dsc = float(np.clip(rng.normal(0.85, 0.08), 0, 1))
                for mode in evaluation["spacing_modes"]:
                    for metric, value in (("dsc", dsc), ("sdc", float(np.clip(dsc + rng.normal(0, 0.05), 0, 1))),
                                          ("hd95", float(abs(rng.normal(5, 3))))):
                        rows.append([run.dataset, run.network, str(run.fold), case, region, metric, mode, value,
                                     float(evaluation["tolerance_mm"])])
        path = root / run.dataset / run.network / f"fold_{run.fold}" / "metrics.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=ROW_COLUMNS).to_csv(path, index=False)
        paths.append(path)
    return paths


def cpu_stages(rehearsal: Rehearsal, datasets: Sequence[str] | None = None,
               tables: bool = True) -> tuple[dict[str, CaseSource], list[StageMeasurement]]:
    """Every CPU stage of every dataset of the config (or of ``datasets``), then the tables once."""
    sources, measurements = {}, []
    for key in datasets or datasets_of(rehearsal.config):
        sources[key], stages = rehearsal.dataset(key)
        measurements.extend(stages)
    if tables:
        measurements.extend(rehearsal.tables())
    return sources, measurements


def total_cases(config: Mapping[str, Any]) -> int:
    """Training cases over the config's datasets (the scale the rehearsal extrapolates to)."""
    return sum(get_dataset(d).expected_training_cases for d in datasets_of(config))


__all__ = ["CaseSource", "Rehearsal", "choose_cases", "cpu_stages", "total_cases", "write_full_grid_metrics",
           "write_shifted_predictions"]
