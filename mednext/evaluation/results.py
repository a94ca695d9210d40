"""Score a prediction folder against a ground-truth folder into a tidy CSV, and summarise.

Tidy CSV: one row per (dataset, network, fold, case, class, metric, spacing_mode) with a ``value``
column (plus ``tolerance_mm``, the surface-Dice tolerance of the run). The paper reports 5-fold
cross-validation means (§3); summaries give per-fold and cross-fold mean, std, number of cases
and the NaN/inf counts (NaN: region absent from both masks; inf: HD95 with one mask empty; both
are left out of mean and std).

A finished CSV has a ``<csv>.signature.json`` beside it. A later call with the same inputs (file
names, sizes, modification times) and parameters returns without recomputing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from mednext.atomic import atomic_write_csv, atomic_write_text
from mednext.data.registry import regions_outside_mean
from mednext.evaluation.io import DEFAULT_SPACING_TOLERANCE_MM, EvaluationInputError, check_prediction, read_label_image
from mednext.evaluation.metrics import SPACING_MODES, Regions, evaluate_label_maps

log = logging.getLogger(__name__)

ROW_COLUMNS = ["dataset", "network", "fold", "case", "class", "metric", "spacing_mode", "value", "tolerance_mm"]
GROUP_FOLD = ["dataset", "network", "fold", "class", "metric", "spacing_mode"]
GROUP_ALL = ["dataset", "network", "class", "metric", "spacing_mode"]
SIGNATURE_VERSION = 1
MEAN_CLASS = "mean_over_classes"


@dataclass(frozen=True)
class EvaluationRun:
    """Outcome of :func:`evaluate_folder`."""

    csv_path: Path
    n_cases: int
    recomputed: bool


def case_id(path: Path, file_ending: str) -> str:
    """Case identifier: the file name without ``file_ending`` (nnU-Net naming)."""
    return path.name[: -len(file_ending)]


def _file_record(path: Path) -> list[object]:
    stat = path.stat()
    return [path.name, stat.st_size, stat.st_mtime_ns]


def _signature(files: Sequence[Path], params: Mapping[str, object]) -> str:
    payload = {"version": SIGNATURE_VERSION, "params": params, "files": [_file_record(p) for p in files]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def signature_path(csv_path: Path) -> Path:
    """The file beside a metrics CSV recording the inputs and parameters it was computed from."""
    return csv_path.with_name(csv_path.name + ".signature.json")


def _is_up_to_date(csv_path: Path, signature: str, inputs: Sequence[Path]) -> bool:
    sig_path = signature_path(csv_path)
    if not csv_path.is_file() or not sig_path.is_file():
        return False
    try:
        stored = json.loads(sig_path.read_text(encoding="utf-8")).get("signature")
    except (OSError, ValueError):
        return False
    newest_input = max((p.stat().st_mtime_ns for p in inputs), default=0)
    return stored == signature and csv_path.stat().st_mtime_ns >= newest_input


def _pair_files(gt_dir: Path, pred_dir: Path, file_ending: str,
                cases: Sequence[str] | None = None) -> list[tuple[Path, Path]]:
    """(ground truth, prediction) per case: every case of ``gt_dir``, or only ``cases``."""
    if cases is None:
        gts = sorted(p for p in gt_dir.iterdir() if p.name.endswith(file_ending) and not p.name.startswith("."))
    else:
        gts = [gt_dir / f"{case}{file_ending}" for case in sorted(cases)]
        absent = [p.name for p in gts if not p.is_file()]
        if absent:
            raise EvaluationInputError(f"{gt_dir}: no ground truth for {len(absent)} case(s): {', '.join(absent[:10])}")
    if not gts:
        raise EvaluationInputError(f"{gt_dir}: no ground-truth files ending in {file_ending!r}")
    missing = [p.name for p in gts if not (pred_dir / p.name).is_file()]
    if missing:
        raise EvaluationInputError(f"{pred_dir}: missing predictions for {len(missing)} case(s): {', '.join(missing[:10])}")
    extra = {p.name for p in pred_dir.iterdir() if p.name.endswith(file_ending)} - {p.name for p in gts}
    if extra:
        log.warning("%s: %d prediction(s) without ground truth ignored", pred_dir, len(extra))
    return [(p, pred_dir / p.name) for p in gts]


def score_case(
    gt_path: Path,
    pred_path: Path,
    regions: Regions,
    allowed_labels: Sequence[int],
    spacing_modes: Sequence[str],
    tolerance_mm: float,
    spacing_tolerance_mm: float = DEFAULT_SPACING_TOLERANCE_MM,
) -> list[tuple[str, str, str, float]]:
    """Read, check and score one case: rows of (class, metric, spacing_mode, value)."""
    gt = read_label_image(gt_path)
    pred = read_label_image(pred_path)
    check_prediction(gt, pred, allowed_labels, spacing_tolerance_mm)
    results = evaluate_label_maps(
        gt.array, pred.array, regions, gt.spacing, spacing_modes, tolerance_mm, boxes=(gt.boxes, pred.boxes)
    )
    return [(r.region, metric, r.spacing_mode, value) for r in results for metric, value in r.metric_items()]


def default_allowed_labels(regions: Regions) -> list[int]:
    """Background plus every label used by a region."""
    return sorted({0} | {int(v) for labels in regions.values() for v in labels})


def evaluate_folder(
    gt_dir: str | Path,
    pred_dir: str | Path,
    out_csv: str | Path,
    dataset: str,
    network: str,
    fold: str | int,
    regions: Regions,
    allowed_labels: Iterable[int] | None = None,
    spacing_modes: Sequence[str] = SPACING_MODES,
    tolerance_mm: float = 1.0,
    file_ending: str = ".nii.gz",
    workers: int = 1,
    spacing_tolerance_mm: float = DEFAULT_SPACING_TOLERANCE_MM,
    cases: Sequence[str] | None = None,
) -> EvaluationRun:
    """Score every ground-truth case of ``gt_dir`` (or only ``cases``, e.g. a fold's validation
    cases) against the same-named file in ``pred_dir``.

    Writes the tidy CSV ``out_csv`` (temp file + rename) and its signature file. Returns at once,
    without recomputing, when both exist and match the inputs and parameters. Any bad file raises
    :class:`EvaluationInputError` before anything is written.
    """
    gt_dir, pred_dir, out_csv = Path(gt_dir), Path(pred_dir), Path(out_csv)
    for folder in (gt_dir, pred_dir):
        if not folder.is_dir():
            raise EvaluationInputError(f"{folder}: folder not found")
    for mode in spacing_modes:
        if mode not in SPACING_MODES:
            raise ValueError(f"unknown spacing mode {mode!r}; expected one of {SPACING_MODES}")
    regions = {str(k): tuple(int(v) for v in labels) for k, labels in regions.items()}
    allowed = sorted(int(v) for v in allowed_labels) if allowed_labels is not None else default_allowed_labels(regions)
    pairs = _pair_files(gt_dir, pred_dir, file_ending, cases)
    inputs = [p for pair in pairs for p in pair]
    params = {
        "dataset": dataset, "network": network, "fold": str(fold), "regions": regions, "allowed": allowed,
        "spacing_modes": list(spacing_modes), "tolerance_mm": float(tolerance_mm),
        "spacing_tolerance_mm": float(spacing_tolerance_mm), "gt_dir": str(gt_dir.resolve()),
        "pred_dir": str(pred_dir.resolve()),
    }
    signature = _signature(inputs, params)
    if _is_up_to_date(out_csv, signature, inputs):
        log.info("%s is up to date; not recomputed", out_csv)
        n_cases = len(pairs)
        return EvaluationRun(out_csv, n_cases, recomputed=False)

    args = (regions, allowed, tuple(spacing_modes), float(tolerance_mm), float(spacing_tolerance_mm))
    rows: list[list[object]] = []
    # kept: logs end the bar's line
    progress = tqdm(total=len(pairs), desc=f"evaluate {dataset}/{network}/fold {fold}", unit="case")
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(score_case, g, p, *args) for g, p in pairs]
            for (gt_path, _), future in zip(pairs, futures):
                case_rows = future.result()
                rows.extend(_tidy(dataset, network, fold, case_id(gt_path, file_ending), case_rows, tolerance_mm))
                progress.update()
    else:
        for gt_path, pred_path in pairs:
            case_rows = score_case(gt_path, pred_path, *args)
            rows.extend(_tidy(dataset, network, fold, case_id(gt_path, file_ending), case_rows, tolerance_mm))
            progress.update()
    progress.close()
    frame = pd.DataFrame(rows, columns=ROW_COLUMNS)
    atomic_write_csv(frame, out_csv)
    atomic_write_text(signature_path(out_csv), json.dumps({"signature": signature, "params": params}, indent=1, default=str))
    return EvaluationRun(out_csv, len(pairs), recomputed=True)


def _tidy(dataset: str, network: str, fold: str | int, case: str, case_rows: list[tuple[str, str, str, float]],
          tolerance_mm: float) -> list[list[object]]:
    return [[dataset, network, str(fold), case, cls, metric, mode, value, float(tolerance_mm)]
            for cls, metric, mode, value in case_rows]


def read_results(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Concatenate tidy result CSVs, checking their columns."""
    frames = []
    for path in paths:
        frame = pd.read_csv(path, dtype={"fold": str, "case": str, "class": str})
        missing = [c for c in ROW_COLUMNS if c not in frame.columns]
        if missing:
            raise EvaluationInputError(f"{path}: not a tidy results CSV, missing columns {missing}")
        frames.append(frame)
    if not frames:
        raise EvaluationInputError("no result CSVs given")
    return pd.concat(frames, ignore_index=True)


def _describe(values: pd.Series) -> pd.Series:
    array = values.to_numpy(dtype=np.float64)
    finite = array[np.isfinite(array)]
    return pd.Series({
        "mean": float(finite.mean()) if finite.size else np.nan,
        "std": float(finite.std(ddof=1)) if finite.size > 1 else np.nan,
        "n_cases": int(array.size),
        "n_nan": int(np.isnan(array).sum()),
        "n_inf": int(np.isinf(array).sum()),
    })


def _summary(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    summary = frame.groupby(keys, sort=True)["value"].apply(_describe).unstack().reset_index()
    for column in ("n_cases", "n_nan", "n_inf"):
        summary[column] = summary[column].astype(int)
    return summary


def _class_mean(summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean over classes of the class means (the paper's "mean" column), one row per group.

    Regions the dataset registry leaves out of the mean (``Region.in_mean``) are skipped.
    """
    group = [k for k in keys if k != "class"]
    outside = {d: regions_outside_mean(d) for d in summary["dataset"].unique()}
    counted = [c not in outside[d] for d, c in zip(summary["dataset"], summary["class"])]
    rows = summary[counted].groupby(group, sort=True).agg(mean=("mean", "mean"), n_cases=("n_cases", "max"),
                                                 n_nan=("n_nan", "sum"), n_inf=("n_inf", "sum")).reset_index()
    rows["class"] = MEAN_CLASS
    rows["std"] = np.nan
    return rows


def summarize(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-fold and cross-fold summaries of tidy results.

    Per fold: mean/std over cases (finite values only), n_cases, n_nan, n_inf. Cross-fold: the
    same pooled over the cases of all folds (nnU-Net's 5-fold CV mean), plus ``n_folds`` and the
    std of the per-fold means. Each table adds a ``mean_over_classes`` row per metric.
    """
    per_fold = _summary(results, GROUP_FOLD)
    per_fold = pd.concat([per_fold, _class_mean(per_fold, GROUP_FOLD)], ignore_index=True)
    cross = _summary(results, GROUP_ALL)
    fold_means = per_fold.groupby(GROUP_ALL)["mean"].agg(n_folds="count", std_of_fold_means=lambda s: s.std(ddof=1))
    cross = cross.merge(fold_means.reset_index(), on=GROUP_ALL, how="left")
    class_mean = _class_mean(cross, GROUP_ALL)
    class_folds = per_fold[per_fold["class"] == MEAN_CLASS].groupby([k for k in GROUP_ALL if k != "class"])["mean"]
    class_mean = class_mean.merge(
        class_folds.agg(n_folds="count", std_of_fold_means=lambda s: s.std(ddof=1)).reset_index(),
        on=[k for k in GROUP_ALL if k != "class"], how="left",
    )
    cross = pd.concat([cross, class_mean], ignore_index=True)
    fold_columns = GROUP_FOLD + ["mean", "std", "n_cases", "n_nan", "n_inf"]
    cross_columns = GROUP_ALL + ["mean", "std", "n_cases", "n_nan", "n_inf", "n_folds", "std_of_fold_means"]
    return per_fold[fold_columns], cross[cross_columns]


def write_summaries(csv_paths: Iterable[str | Path], out_dir: str | Path) -> tuple[Path, Path]:
    """Summarise result CSVs into ``summary_per_fold.csv`` and ``summary_cross_fold.csv``."""
    per_fold, cross = summarize(read_results(csv_paths))
    out_dir = Path(out_dir)
    fold_path, cross_path = out_dir / "summary_per_fold.csv", out_dir / "summary_cross_fold.csv"
    atomic_write_csv(per_fold, fold_path)
    atomic_write_csv(cross, cross_path)
    return fold_path, cross_path
