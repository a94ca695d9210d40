"""Challenge packaging (naming, BraTS label mapping, zip), leaderboard records, ensemble checks."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from mednext.cli import main
from mednext.evaluation.ensemble import check_model_folder
from mednext.evaluation.io import EvaluationInputError
from mednext.evaluation.leaderboard import LEADERBOARD_COLUMNS, record_leaderboard_score
from mednext.evaluation.submission import package_submission, submission_name


def _write(path: Path, array: np.ndarray) -> None:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing((1.0, 1.0, 1.0))
    image.SetOrigin((-10.0, 5.0, 2.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))


def test_submission_names() -> None:
    assert submission_name("case_00210", "kits19") == "prediction_00210.nii.gz"
    assert submission_name("img0061", "btcv") == "label0061.nii.gz"
    assert submission_name("BraTS2021_01001", "brats21") == "BraTS2021_01001.nii.gz"
    assert submission_name("amos_0500", "generic") == "amos_0500.nii.gz"
    with pytest.raises(EvaluationInputError, match="kits19 naming"):
        submission_name("img0061", "kits19")


def test_brats_package_maps_labels_back_and_keeps_geometry(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {name: rng.integers(0, 4, (6, 7, 8)) for name in ("BraTS2021_00001", "BraTS2021_00002")}
    for name, array in arrays.items():
        _write(tmp_path / "pred" / f"{name}.nii.gz", array)
    out = tmp_path / "sub" / "brats.zip"
    names = package_submission(tmp_path / "pred", "brats21", out)
    assert names == ["BraTS2021_00001.nii.gz", "BraTS2021_00002.nii.gz"]
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == names
        archive.extractall(tmp_path / "unzipped")
    for name, array in arrays.items():
        image = sitk.ReadImage(str(tmp_path / "unzipped" / f"{name}.nii.gz"))
        back = sitk.GetArrayFromImage(image)
        expected = np.select([array == 1, array == 2, array == 3], [2, 1, 4], 0)
        np.testing.assert_array_equal(back, expected)
        assert image.GetOrigin() == (-10.0, 5.0, 2.0)
    assert not list((tmp_path / "sub").glob(".submission.*"))


def test_kits_package_renames_and_rejects_foreign_names(tmp_path: Path) -> None:
    for i in (210, 211):
        _write(tmp_path / "pred" / f"case_{i:05d}.nii.gz", np.ones((3, 3, 3)))
    out = tmp_path / "kits.zip"
    assert package_submission(tmp_path / "pred", "kits19", out) == ["prediction_00210.nii.gz", "prediction_00211.nii.gz"]
    with zipfile.ZipFile(out) as archive:
        data = archive.read("prediction_00211.nii.gz")
    assert data == (tmp_path / "pred" / "case_00211.nii.gz").read_bytes()
    _write(tmp_path / "pred" / "img0001.nii.gz", np.ones((3, 3, 3)))
    with pytest.raises(EvaluationInputError, match="img0001"):
        package_submission(tmp_path / "pred", "kits19", tmp_path / "kits2.zip")
    assert not (tmp_path / "kits2.zip").exists()


def test_brats_package_rejects_unknown_label(tmp_path: Path) -> None:
    _write(tmp_path / "pred" / "BraTS2021_00003.nii.gz", np.full((3, 3, 3), 5))
    with pytest.raises(EvaluationInputError, match=r"BraTS2021_00003.nii.gz: label values \[5\]"):
        package_submission(tmp_path / "pred", "brats21", tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def test_record_leaderboard_appends_rows(tmp_path: Path) -> None:
    csv = tmp_path / "paper_tables" / "leaderboard_scores.csv"
    record_leaderboard_score(csv, "BTCV", "MedNeXt-L", "DSC", 0.8868, submission="btcv.zip",
                             recorded_at="2026-01-01T00:00:00+00:00")
    table = record_leaderboard_score(csv, "KiTS19", "MedNeXt-L", "DSC", 0.9145)
    assert len(table) == 2
    read = pd.read_csv(csv)
    assert list(read.columns) == LEADERBOARD_COLUMNS
    assert read["value"].tolist() == [0.8868, 0.9145]
    assert read.loc[0, "recorded_at"] == "2026-01-01T00:00:00+00:00"
    with pytest.raises(ValueError, match="finite"):
        record_leaderboard_score(csv, "BTCV", "MedNeXt-L", "DSC", float("nan"))
    assert len(pd.read_csv(csv)) == 2
    bad = tmp_path / "other.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(EvaluationInputError, match="other.csv: expected columns"):
        record_leaderboard_score(bad, "BTCV", "MedNeXt-L", "DSC", 0.5)


def test_cli_package_and_record(tmp_path: Path) -> None:
    _write(tmp_path / "pred" / "img0061.nii.gz", np.ones((3, 3, 3)))
    assert main(["package-submission", "--pred", str(tmp_path / "pred"), "--challenge", "btcv",
                 "--out", str(tmp_path / "b.zip")]) == 0
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        assert archive.namelist() == ["label0061.nii.gz"]
    csv = tmp_path / "scores.csv"
    assert main(["record-leaderboard", "--csv", str(csv), "--dataset", "BTCV", "--network", "MedNeXt-M", "--metric", "DSC",
                 "--value", "0.88", "--submission", "b.zip"]) == 0
    row = pd.read_csv(csv).iloc[0]
    # filed under the registry key, the name paper_tables/reported/test_set.csv (and so the test-set table) uses
    assert (row["dataset"], row["metric"], row["value"], row["split"]) == ("btcv", "DSC", 0.88, "test")


def test_ensemble_requires_every_fold_checkpoint(tmp_path: Path) -> None:
    model = tmp_path / "model"
    with pytest.raises(EvaluationInputError, match="dataset.json"):
        check_model_folder(model, (0, 1), "checkpoint_final.pth")
    model.mkdir()
    (model / "dataset.json").write_text("{}")
    (model / "plans.json").write_text("{}")
    for fold in (0, 1, 2, 4):
        (model / f"fold_{fold}").mkdir()
        (model / f"fold_{fold}" / "checkpoint_final.pth").write_bytes(b"x")
    with pytest.raises(EvaluationInputError, match="fold_3"):
        check_model_folder(model, (0, 1, 2, 3, 4), "checkpoint_final.pth")
    assert len(check_model_folder(model, (0, 1, 2, 4), "checkpoint_final.pth")) == 4
