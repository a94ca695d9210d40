"""Our DSC against nnU-Net's own validation Dice: the same predictions must score the same.

nnU-Net v2 writes ``<fold>/validation/summary.json`` at the end of training: per validation case
(``metric_per_case``) and per label or region (keys ``"1"`` or ``"(1, 2, 3)"``) a ``Dice`` that is
``2 TP / (2 TP + FP + FN)`` and NaN when reference and prediction are both empty
(``nnunetv2.evaluation.evaluate_predictions.compute_metrics``). Our tidy ``metrics.csv`` scores the
same files with :mod:`mednext.evaluation.metrics`, whose DSC uses the same formula and the same NaN
for empty-empty. DSC does not depend on spacing, so every ``spacing_mode`` row of a (case, class)
must agree. A class is compared when its label set is one nnU-Net reports (a union that nnU-Net
does not evaluate, e.g. KiTS19 "kidney" = labels 1 and 2 in a label-based training, is skipped).
A prediction file changed after nnU-Net's summary was written shows up as a disagreement.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

#: Largest allowed |ours - nnU-Net| per case and class: both compute 2TP / (2TP + FP + FN) from the same
#: voxel counts, so anything beyond float rounding is a real disagreement.
TOLERANCE = 1e-6
DSC_METRIC = "dsc"  # the metric name in our tidy CSV (mednext.evaluation.metrics.METRICS)
_FILE_ENDINGS = (".nii.gz", ".nii", ".mha", ".nrrd", ".png", ".tif", ".tiff")


class AgreementError(ValueError):
    """Our metrics and nnU-Net's validation summary disagree (or cannot be compared)."""


@dataclass(frozen=True)
class Agreement:
    """Outcome of a passing check: how much was compared and the largest difference seen."""

    n_cases: int
    classes: tuple[str, ...]
    n_values: int
    max_abs_difference: float
    skipped_classes: tuple[str, ...]


def _key_labels(key: str) -> tuple[int, ...]:
    """nnU-Net's summary key (``"2"`` or ``"(1, 2, 3)"``) as a sorted label tuple."""
    text = key.strip().strip("()[]")
    try:
        return tuple(sorted(int(part) for part in text.split(",") if part.strip()))
    except ValueError:
        raise AgreementError(f"nnU-Net summary key {key!r} is neither a label nor a region tuple") from None


def _case_of(file_path: str) -> str:
    """Case id of an nnU-Net prediction/reference path (file name without its ending)."""
    name = Path(file_path).name
    for ending in _FILE_ENDINGS:
        if name.endswith(ending):
            return name[: -len(ending)]
    return name


def read_nnunet_summary(path: str | Path) -> dict[str, dict[tuple[int, ...], float]]:
    """``validation/summary.json`` as {case: {label tuple: Dice}} (NaN kept as NaN).

    Raises:
        AgreementError: file missing, not JSON, or without ``metric_per_case`` entries.
    """
    path = Path(path)
    if not path.is_file():
        raise AgreementError(f"{path}: nnU-Net validation summary not found (nnU-Net writes it after its final validation)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        per_case = data["metric_per_case"]
        dice: dict[str, dict[tuple[int, ...], float]] = {}
        for entry in per_case:
            case = _case_of(entry["prediction_file"])
            dice[case] = {_key_labels(key): float(values["Dice"]) for key, values in entry["metrics"].items()}
    except (ValueError, KeyError, TypeError) as error:
        raise AgreementError(f"{path}: not an nnU-Net validation summary ({type(error).__name__}: {error})") from None
    if not dice:
        raise AgreementError(f"{path}: nnU-Net validation summary lists no cases")
    return dice


def _same(ours: float, theirs: float, tolerance: float) -> bool:
    if math.isnan(ours) or math.isnan(theirs):
        return math.isnan(ours) and math.isnan(theirs)
    return abs(ours - theirs) <= tolerance


def check_agreement(
    metrics: pd.DataFrame,
    nnunet_dice: Mapping[str, Mapping[tuple[int, ...], float]],
    regions: Mapping[str, tuple[int, ...]],
    tolerance: float = TOLERANCE,
    source: str = "metrics",
) -> Agreement:
    """Compare every DSC row of a tidy ``metrics`` frame with nnU-Net's per-case Dice.

    ``regions`` maps our class names to their labels (as given to ``evaluate``). Both sides must
    list the same cases. Raises :class:`AgreementError` naming the first disagreeing case, class,
    both values and ``source``.
    """
    dsc = metrics[metrics["metric"] == DSC_METRIC]
    if dsc.empty:
        raise AgreementError(f"{source}: no {DSC_METRIC} rows to compare with nnU-Net's summary")
    ours_cases = set(dsc["case"].astype(str))
    theirs_cases = set(nnunet_dice)
    if ours_cases != theirs_cases:
        only_ours, only_theirs = sorted(ours_cases - theirs_cases), sorted(theirs_cases - ours_cases)
        raise AgreementError(
            f"{source}: cases differ from nnU-Net's validation summary: only ours {only_ours[:5]}, "
            f"only nnU-Net's {only_theirs[:5]}"
        )
    nnunet_labels = {labels for per_class in nnunet_dice.values() for labels in per_class}
    compared: list[str] = []
    skipped: list[str] = []
    for name in sorted(set(dsc["class"].astype(str))):
        if name not in regions:
            continue  # e.g. the mean over classes, if a CSV ever carries it
        if tuple(sorted(regions[name])) in nnunet_labels:
            compared.append(name)
        else:
            skipped.append(name)
    if not compared:
        raise AgreementError(
            f"{source}: none of the classes {sorted(regions)} has a label set that nnU-Net's summary reports "
            f"({sorted(nnunet_labels)})"
        )
    largest = 0.0
    n_values = 0
    rows = dsc[dsc["class"].astype(str).isin(compared)].sort_values(["case", "class", "spacing_mode"])
    for case, name, mode, value in rows[["case", "class", "spacing_mode", "value"]].itertuples(index=False):
        labels = tuple(sorted(regions[name]))
        theirs = nnunet_dice[str(case)].get(labels)
        if theirs is None:
            raise AgreementError(f"{source}: case {case}: nnU-Net's summary has no Dice for {name} (labels {labels})")
        ours = float(value)
        if not _same(ours, theirs, tolerance):
            raise AgreementError(
                f"{source}: case {case}, class {name}: our DSC {ours:.8g} ({mode} rows) != nnU-Net's validation "
                f"Dice {theirs:.8g} (|diff| > {tolerance:g}); was the prediction changed after nnU-Net's summary?"
            )
        if not math.isnan(ours):
            largest = max(largest, abs(ours - theirs))
        n_values += 1
    return Agreement(len(ours_cases), tuple(compared), n_values, largest, tuple(skipped))


def check_fold_agreement(
    metrics_csv: str | Path,
    summary_json: str | Path,
    regions: Mapping[str, tuple[int, ...]],
    tolerance: float = TOLERANCE,
) -> Agreement:
    """:func:`check_agreement` for a fold's ``metrics.csv`` and nnU-Net's ``validation/summary.json``."""
    metrics_csv = Path(metrics_csv)
    try:
        metrics = pd.read_csv(metrics_csv, dtype={"case": str, "class": str})
    except (OSError, ValueError) as error:
        raise AgreementError(f"{metrics_csv}: cannot read metrics ({error})") from None
    missing = {"case", "class", "metric", "spacing_mode", "value"} - set(metrics.columns)
    if missing:
        raise AgreementError(f"{metrics_csv}: not a tidy metrics CSV, missing columns {sorted(missing)}")
    return check_agreement(metrics, read_nnunet_summary(summary_json), regions, tolerance, source=str(metrics_csv))
