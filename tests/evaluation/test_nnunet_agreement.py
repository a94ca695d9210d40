"""Our DSC equals the Dice of nnU-Net's own evaluator on the same files.

The reference side is nnU-Net's ``compute_metrics_on_folder`` (what nnU-Net's final validation
calls to write ``validation/summary.json``), run on small label maps; the check must pass on them
and fail, naming the case, after one prediction is changed.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

from mednext.cli import main
from mednext.evaluation.nnunet_agreement import AgreementError, check_agreement, check_fold_agreement, read_nnunet_summary
from mednext.evaluation.results import evaluate_folder

REGIONS = {"liver": (1,), "spleen": (2,), "kidneys": (3, 4)}  # "kidneys": a union nnU-Net does not score here
LABELS = [1, 2, 3, 4]


def _write(array: np.ndarray, path: Path) -> None:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing((0.8, 0.8, 2.5))
    sitk.WriteImage(image, str(path), True)


@pytest.fixture(scope="module")
def fold(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Ground truth, predictions, nnU-Net's summary.json and our metrics.csv for three small cases."""
    tmp_path = tmp_path_factory.mktemp("fold")
    rng = np.random.default_rng(3)
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "validation"
    gt_dir.mkdir()
    pred_dir.mkdir()
    for index in range(3):
        gt = np.zeros((6, 14, 14), np.uint8)
        gt[1:5, 2:8, 2:9] = 1
        gt[2:4, 9:13, 9:13] = 2
        if index != 1:
            gt[0:3, 9:12, 2:6] = 3  # case 1: label 3 absent from ground truth and prediction (nnU-Net's NaN)
        pred = gt.copy()
        flip = rng.random(gt.shape) < 0.08
        pred[flip] = rng.integers(0, 5, int(flip.sum()))
        if index == 1:
            pred[pred == 3] = 0
        if index == 2:
            pred[5, 0, 0] = 4  # label 4 predicted, absent in ground truth: Dice 0 on both sides
        _write(gt, gt_dir / f"case_{index}.nii.gz")
        _write(pred, pred_dir / f"case_{index}.nii.gz")
    summary = pred_dir / "summary.json"
    compute_metrics_on_folder(str(gt_dir), str(pred_dir), str(summary), SimpleITKIO(), ".nii.gz", LABELS,
                              num_processes=1)
    metrics = tmp_path / "metrics.csv"
    evaluate_folder(gt_dir, pred_dir, metrics, dataset="toy", network="net", fold=0, regions=REGIONS,
                    allowed_labels=[0, 1, 2, 3, 4], spacing_modes=("physical", "paper"))
    return {"gt": gt_dir, "pred": pred_dir, "summary": summary, "metrics": metrics}


def test_agrees_with_nnunet_evaluator_including_empty_cases(fold: dict[str, Path]) -> None:
    dice = read_nnunet_summary(fold["summary"])
    assert math.isnan(dice["case_1"][(3,)])  # nnU-Net's empty-empty convention reached the check
    assert dice["case_2"][(4,)] == 0.0
    result = check_fold_agreement(fold["metrics"], fold["summary"], REGIONS)
    assert result.n_cases == 3
    assert result.classes == ("liver", "spleen")
    assert result.skipped_classes == ("kidneys",)
    assert result.n_values == 3 * 2 * 2  # cases x compared classes x spacing modes
    assert result.max_abs_difference <= 1e-6


def test_single_labels_compare_the_nan_rows_too(fold: dict[str, Path]) -> None:
    regions = {"liver": (1,), "spleen": (2,), "kidney_right": (3,), "kidney_left": (4,)}
    evaluate_folder(fold["gt"], fold["pred"], fold["metrics"].with_name("labels.csv"), dataset="toy", network="net",
                    fold=0, regions=regions, spacing_modes=("physical",))
    result = check_fold_agreement(fold["metrics"].with_name("labels.csv"), fold["summary"], regions)
    assert result.classes == ("kidney_left", "kidney_right", "liver", "spleen") and result.n_values == 12


def test_prediction_changed_after_the_summary_fails_naming_the_case(fold: dict[str, Path], tmp_path: Path) -> None:
    shutil.copytree(fold["pred"], tmp_path / "validation")
    fold = {**fold, "pred": tmp_path / "validation", "summary": tmp_path / "validation" / "summary.json",
            "metrics": tmp_path / "metrics.csv"}
    changed = fold["pred"] / "case_2.nii.gz"
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(changed)))
    array[1:5, 2:8, 2:9] = 0  # the liver is gone
    _write(array, changed)
    evaluate_folder(fold["gt"], fold["pred"], fold["metrics"], dataset="toy", network="net", fold=0, regions=REGIONS,
                    allowed_labels=[0, 1, 2, 3, 4], spacing_modes=("physical", "paper"))
    with pytest.raises(AgreementError, match=r"case case_2, class liver: our DSC 0 .* nnU-Net's validation Dice 0\.9") as info:
        check_fold_agreement(fold["metrics"], fold["summary"], REGIONS)
    assert "\n" not in str(info.value)
    # the evaluate command stops on it and leaves no metrics behind (nothing that disagrees is kept)
    out = tmp_path / "cli" / "metrics.csv"
    with pytest.raises(SystemExit, match=r"^evaluate: disagrees with nnU-Net: .*case case_2, class liver") as stop:
        main(["evaluate", "--gt", str(fold["gt"]), "--pred", str(fold["pred"]), "--out", str(out), "--dataset", "toy",
              "--network", "net", "--fold", "0", "--nnunet-summary", str(fold["summary"]),
              "--regions", *(f"{name}={','.join(map(str, labels))}" for name, labels in REGIONS.items())])
    assert "\n" not in str(stop.value.code)
    assert sorted(p.name for p in out.parent.iterdir()) == []


def test_different_cases_or_no_comparable_class_are_errors(fold: dict[str, Path]) -> None:
    metrics = pd.read_csv(fold["metrics"], dtype={"case": str})
    dice = read_nnunet_summary(fold["summary"])
    with pytest.raises(AgreementError, match=r"only ours \[\], only nnU-Net's \['case_0'\]"):
        check_agreement(metrics[metrics["case"] != "case_0"], dice, REGIONS)
    with pytest.raises(AgreementError, match="none of the classes"):
        check_agreement(metrics, dice, {"kidneys": (3, 4)})


def test_unreadable_summary_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(AgreementError, match="summary.json: nnU-Net validation summary not found"):
        read_nnunet_summary(tmp_path / "summary.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"foreground_mean": {}}))
    with pytest.raises(AgreementError, match="bad.json: not an nnU-Net validation summary"):
        read_nnunet_summary(bad)
