"""Folder scoring: NIfTI reading, bad prediction files, tidy CSV, caching, summaries, CLI."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from surface_distance import metrics as sd

from mednext.cli import main
from mednext.evaluation.io import EvaluationInputError
from mednext.evaluation.metrics import METRICS
from mednext.evaluation.results import evaluate_folder, read_results, summarize

SPACING_XYZ = (0.8, 0.8, 2.5)  # SimpleITK order; arrays are (z, y, x) with spacing (2.5, 0.8, 0.8)
REGIONS = {"kidney": (1,), "tumor": (2,), "kidney+tumor": (1, 2)}


def write_label(path: Path, array: np.ndarray, spacing_xyz=SPACING_XYZ) -> Path:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing(spacing_xyz)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


def _case(rng: np.random.Generator, shape=(10, 24, 26), tumour=True) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    z, y, x = (rng.integers(1, 3), rng.integers(2, 6), rng.integers(2, 6))
    labels[z : z + 6, y : y + 14, x : x + 15] = 1
    if tumour:
        labels[z + 2 : z + 5, y + 3 : y + 8, x + 4 : x + 9] = 2
    return labels


@pytest.fixture()
def folders(tmp_path: Path) -> tuple[Path, Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    rng = np.random.default_rng(4)
    arrays = {}
    for i, tumour_in_pred in enumerate((True, True, False)):
        gt = _case(rng)
        pred = np.roll(_case(rng, tumour=tumour_in_pred), 1, axis=2)
        name = f"case_{i:05d}"
        write_label(tmp_path / "gt" / f"{name}.nii.gz", gt)
        write_label(tmp_path / "pred" / f"{name}.nii.gz", pred)
        arrays[name] = (gt, pred)
    return tmp_path / "gt", tmp_path / "pred", arrays


def _evaluate(gt_dir: Path, pred_dir: Path, out: Path, **kwargs):
    return evaluate_folder(gt_dir, pred_dir, out, dataset="KiTS19", network="MedNeXt-S", fold=0, regions=REGIONS, **kwargs)


def test_tidy_csv_values_and_shape(folders, tmp_path: Path) -> None:
    gt_dir, pred_dir, arrays = folders
    run = _evaluate(gt_dir, pred_dir, tmp_path / "out" / "fold0.csv")
    frame = pd.read_csv(run.csv_path, dtype={"fold": str})
    assert run.recomputed and run.n_cases == 3
    assert len(frame) == 3 * len(REGIONS) * len(METRICS) * 2
    assert not frame.duplicated(["dataset", "network", "fold", "case", "class", "metric", "spacing_mode"]).any()
    # one value checked against the reference package, reading spacing from the header
    gt, pred = arrays["case_00001"]
    mask_gt, mask_pred = np.isin(gt, (1, 2)), np.isin(pred, (1, 2))
    distances = sd.compute_surface_distances(mask_gt, mask_pred, [2.5, 0.8, 0.8])
    row = frame.set_index(["case", "class", "metric", "spacing_mode"])["value"]
    assert row[("case_00001", "kidney+tumor", "sdc", "physical")] == pytest.approx(
        sd.compute_surface_dice_at_tolerance(distances, 1.0), abs=1e-6)
    assert row[("case_00001", "kidney+tumor", "hd95", "physical")] == pytest.approx(
        sd.compute_robust_hausdorff(distances, 95), abs=1e-6)
    paper = sd.compute_surface_distances(mask_gt, mask_pred, [1, 1, 1])
    assert row[("case_00001", "kidney+tumor", "sdc", "paper")] == pytest.approx(
        sd.compute_surface_dice_at_tolerance(paper, 1.0), abs=1e-6)
    assert row[("case_00001", "kidney", "gt_ml", "physical")] == pytest.approx((gt == 1).sum() * 2.5 * 0.64 / 1000)
    # the prediction of case 2 has no tumour: DSC 0, SDC 0, HD95 inf
    assert row[("case_00002", "tumor", "dsc", "physical")] == 0.0
    assert math.isinf(row[("case_00002", "tumor", "hd95", "physical")])


def test_second_call_does_not_recompute(folders, tmp_path: Path) -> None:
    gt_dir, pred_dir, _ = folders
    out = tmp_path / "fold0.csv"
    _evaluate(gt_dir, pred_dir, out)
    before = out.stat().st_mtime_ns
    again = _evaluate(gt_dir, pred_dir, out)
    assert not again.recomputed and out.stat().st_mtime_ns == before
    # a changed parameter recomputes
    assert _evaluate(gt_dir, pred_dir, out, tolerance_mm=2.0).recomputed
    assert set(pd.read_csv(out)["tolerance_mm"]) == {2.0}
    # a changed prediction recomputes
    assert not _evaluate(gt_dir, pred_dir, out, tolerance_mm=2.0).recomputed
    target = pred_dir / "case_00000.nii.gz"
    write_label(target, np.zeros((10, 24, 26), np.uint8))
    os.utime(target, ns=(out.stat().st_mtime_ns + 10**9, out.stat().st_mtime_ns + 10**9))
    assert _evaluate(gt_dir, pred_dir, out, tolerance_mm=2.0).recomputed
    frame = pd.read_csv(out).set_index(["case", "class", "metric", "spacing_mode"])["value"]
    assert frame[("case_00000", "kidney", "dsc", "physical")] == 0.0


def _expect_error(gt_dir: Path, pred_dir: Path, out: Path, *fragments: str) -> None:
    with pytest.raises(EvaluationInputError) as info:
        _evaluate(gt_dir, pred_dir, out)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))


def test_corrupted_prediction_names_file(folders, tmp_path: Path) -> None:
    gt_dir, pred_dir, _ = folders
    (pred_dir / "case_00001.nii.gz").write_bytes(b"\x1f\x8b not really a nifti")
    _expect_error(gt_dir, pred_dir, tmp_path / "o.csv", "case_00001.nii.gz", "cannot be read")


def test_shape_mismatch_names_file(folders, tmp_path: Path) -> None:
    gt_dir, pred_dir, _ = folders
    write_label(pred_dir / "case_00002.nii.gz", np.zeros((10, 24, 25), np.uint8))
    _expect_error(gt_dir, pred_dir, tmp_path / "o.csv", "case_00002.nii.gz", "shape (10, 24, 25)", "(10, 24, 26)")


def test_spacing_mismatch_names_file(folders, tmp_path: Path) -> None:
    gt_dir, pred_dir, arrays = folders
    write_label(pred_dir / "case_00000.nii.gz", arrays["case_00000"][1], spacing_xyz=(0.8, 0.8, 3.0))
    _expect_error(gt_dir, pred_dir, tmp_path / "o.csv", "case_00000.nii.gz", "spacing (3.0, 0.8", "0.5 mm")


def test_unexpected_label_names_file(folders, tmp_path: Path) -> None:
    gt_dir, pred_dir, arrays = folders
    bad = arrays["case_00001"][1].copy()
    bad[0, 0, 0] = 7
    write_label(pred_dir / "case_00001.nii.gz", bad)
    _expect_error(gt_dir, pred_dir, tmp_path / "o.csv", "case_00001.nii.gz", "[7]")


def test_missing_prediction_and_non_integer_labels(folders, tmp_path: Path) -> None:
    gt_dir, pred_dir, arrays = folders
    (pred_dir / "case_00002.nii.gz").unlink()
    _expect_error(gt_dir, pred_dir, tmp_path / "o.csv", "case_00002.nii.gz", "missing")
    image = sitk.GetImageFromArray(arrays["case_00002"][1].astype(np.float32) + 0.5)
    image.SetSpacing(SPACING_XYZ)
    sitk.WriteImage(image, str(pred_dir / "case_00002.nii.gz"))
    _expect_error(gt_dir, pred_dir, tmp_path / "o.csv", "case_00002.nii.gz", "non-integer")


def test_parallel_workers_give_the_same_csv(folders, tmp_path: Path) -> None:
    gt_dir, pred_dir, _ = folders
    serial = pd.read_csv(_evaluate(gt_dir, pred_dir, tmp_path / "a.csv").csv_path)
    parallel = pd.read_csv(_evaluate(gt_dir, pred_dir, tmp_path / "b.csv", workers=2).csv_path)
    pd.testing.assert_frame_equal(serial, parallel)


def test_summaries_against_direct_computation() -> None:
    rows = []
    values = {0: {"c1": [0.5, 0.7, np.nan], "c2": [0.1, np.inf, 0.3]}, 1: {"c1": [0.9, 0.8, 0.6], "c2": [0.2, 0.4, 0.6]}}
    for fold, per_class in values.items():
        for cls, vals in per_class.items():
            for i, v in enumerate(vals):
                rows.append(["D", "N", str(fold), f"f{fold}c{i}", cls, "hd95", "physical", v, 1.0])
    frame = pd.DataFrame(rows, columns=["dataset", "network", "fold", "case", "class", "metric", "spacing_mode", "value",
                                        "tolerance_mm"])
    per_fold, cross = summarize(frame)
    f0c1 = per_fold[(per_fold["fold"] == "0") & (per_fold["class"] == "c1")].iloc[0]
    assert (f0c1["mean"], f0c1["n_cases"], f0c1["n_nan"], f0c1["n_inf"]) == (pytest.approx(0.6), 3, 1, 0)
    assert f0c1["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    f0c2 = per_fold[(per_fold["fold"] == "0") & (per_fold["class"] == "c2")].iloc[0]
    assert (f0c2["mean"], f0c2["n_inf"]) == (pytest.approx(0.2), 1)
    f0mean = per_fold[(per_fold["fold"] == "0") & (per_fold["class"] == "mean_over_classes")].iloc[0]
    assert f0mean["mean"] == pytest.approx((0.6 + 0.2) / 2)
    c1 = cross[cross["class"] == "c1"].iloc[0]
    pooled = [0.5, 0.7, 0.9, 0.8, 0.6]
    assert (c1["mean"], c1["n_cases"], c1["n_nan"], c1["n_folds"]) == (pytest.approx(np.mean(pooled)), 6, 1, 2)
    assert c1["std"] == pytest.approx(np.std(pooled, ddof=1))
    assert c1["std_of_fold_means"] == pytest.approx(np.std([0.6, np.mean([0.9, 0.8, 0.6])], ddof=1))


def test_kits19_mean_over_classes_leaves_out_the_composite_region() -> None:
    """The paper's KiTS19 mean is over kidney (1) and tumor (2), as the official evaluation scored;
    kidney_and_tumor is reported per class but not averaged in (data registry, ``Region.in_mean``)."""
    values = {"kidney": 0.9, "tumor": 0.5, "kidney_and_tumor": 0.95}
    rows = [[dataset, "N", "0", "case_00000", cls, "dsc", "paper", v, 1.0]
            for dataset in ("kits19", "other") for cls, v in values.items()]
    frame = pd.DataFrame(rows, columns=["dataset", "network", "fold", "case", "class", "metric", "spacing_mode", "value",
                                        "tolerance_mm"])
    per_fold, _ = summarize(frame)
    means = per_fold[per_fold["class"] == "mean_over_classes"].set_index("dataset")["mean"]
    assert means["kits19"] == pytest.approx((0.9 + 0.5) / 2)
    assert means["other"] == pytest.approx((0.9 + 0.5 + 0.95) / 3)  # not in the registry: every class counts
    assert set(per_fold.loc[per_fold["dataset"] == "kits19", "class"]) == {*values, "mean_over_classes"}


def test_cli_evaluate_and_summarize(folders, tmp_path: Path, capsys) -> None:
    gt_dir, pred_dir, _ = folders
    csvs = []
    for fold in (0, 1):
        out = tmp_path / f"fold{fold}.csv"
        args = ["evaluate", "--gt", str(gt_dir), "--pred", str(pred_dir), "--out", str(out), "--dataset", "KiTS19",
                "--network", "MedNeXt-S", "--fold", str(fold), "--region-preset", "kits19", "--spacing-modes", "physical"]
        assert main(args) == 0
        assert main(args) == 0
        csvs.append(str(out))
    assert "not recomputed" in capsys.readouterr().out
    assert main(["summarize", *csvs, "--out-dir", str(tmp_path / "summary")]) == 0
    cross = pd.read_csv(tmp_path / "summary" / "summary_cross_fold.csv")
    dsc = cross[(cross["class"] == "kidney") & (cross["metric"] == "dsc")].iloc[0]
    direct = read_results(csvs)
    direct = direct[(direct["class"] == "kidney") & (direct["metric"] == "dsc")]["value"]
    assert dsc["n_cases"] == 6 and dsc["n_folds"] == 2 and dsc["mean"] == pytest.approx(direct.mean())
    assert set(cross["spacing_mode"]) == {"physical"}
    signature = json.loads((tmp_path / "fold0.csv.signature.json").read_text())
    assert signature["params"]["regions"]["kidney_and_tumor"] == [1, 2]


def test_cli_rejects_bad_region_text(folders, tmp_path: Path) -> None:
    gt_dir, pred_dir, _ = folders
    with pytest.raises(Exception, match="NAME=LABEL"):
        main(["evaluate", "--gt", str(gt_dir), "--pred", str(pred_dir), "--out", str(tmp_path / "x.csv"), "--dataset", "D",
              "--network", "N", "--fold", "0", "--regions", "WT:1,2"])


def test_cli_scores_only_the_folds_validation_cases(folders, tmp_path: Path) -> None:
    """nnU-Net writes a fold's validation cases only; --splits picks them out of the full ground truth."""
    gt_dir, pred_dir, _ = folders
    (pred_dir / "case_00000.nii.gz").unlink()  # a fold-1 validation folder: cases 1 and 2 only
    splits = tmp_path / "splits_final.json"
    splits.write_text(json.dumps([{"train": ["case_00001", "case_00002"], "val": ["case_00000"]},
                                  {"train": ["case_00000"], "val": ["case_00001", "case_00002"]}]))
    base = ["evaluate", "--gt", str(gt_dir), "--pred", str(pred_dir), "--dataset", "KiTS19", "--network", "MedNeXt-S",
            "--region-preset", "kits19", "--splits", str(splits)]
    out = tmp_path / "fold1.csv"
    assert main([*base, "--out", str(out), "--fold", "1"]) == 0
    assert sorted(pd.read_csv(out)["case"].unique()) == ["case_00001", "case_00002"]
    with pytest.raises(EvaluationInputError, match=r"missing predictions for 1 case\(s\): case_00000.nii.gz"):
        main([*base, "--out", str(tmp_path / "fold0.csv"), "--fold", "0"])
    assert not (tmp_path / "fold0.csv").exists()
    with pytest.raises(SystemExit, match="has folds 0-1"):
        main([*base, "--out", str(tmp_path / "fold7.csv"), "--fold", "7"])
