"""An own nnU-Net v2 raw folder as a dataset: what we accept and reject agrees with nnU-Net's
own ``verify_dataset_integrity``; every rejection names the offending file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import SimpleITK as sitk
from nnunetv2.experiment_planning.verify_dataset_integrity import (
    verify_dataset_integrity,
)

from mednext.data.own_dataset import OwnDatasetError, link_own_dataset, own_dataset_spec
from mednext.data.registry import DATASETS, get_dataset, register_dataset
from mednext.data.synthetic import write_synthetic_dataset


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_synthetic_dataset(tmp_path / "user", dataset_id=502, name="Toy", n_cases=3, shape=(8, 16, 16))


def _rewrite(path: Path, change) -> None:
    image = sitk.ReadImage(str(path))
    array = change(sitk.GetArrayFromImage(image))
    out = sitk.GetImageFromArray(array)
    out.SetSpacing(image.GetSpacing())
    sitk.WriteImage(out, str(path), True)


def test_spec_is_read_from_dataset_json_and_nnunet_accepts_the_folder(folder: Path) -> None:
    meta = json.loads((folder / "dataset.json").read_text())
    spec = own_dataset_spec("toy", folder, {"organs": [1, 2]})
    assert (spec.dataset_id, spec.folder_name, spec.nnunet_raw) == (502, "Dataset502_Toy", str(folder))
    assert spec.label_dict() == meta["labels"] and spec.channel_dict() == meta["channel_names"]
    assert [(r.name, r.labels) for r in spec.regions] == [
        *((name, (value,)) for name, value in meta["labels"].items() if value), ("organs", (1, 2))]
    verify_dataset_integrity(str(folder), num_processes=1)  # nnU-Net agrees the folder is valid


def _label_outside(folder: Path) -> Path:
    path = folder / "labelsTr" / "synth_001.nii.gz"
    _rewrite(path, lambda a: (a.__setitem__((0, 0, 0), 9), a)[1])
    return path


def _shape_mismatch(folder: Path) -> Path:
    path = folder / "imagesTr" / "synth_002_0000.nii.gz"
    _rewrite(path, lambda a: a[:, :-1, :].copy())
    return path


def _missing_image(folder: Path) -> Path:
    path = folder / "imagesTr" / "synth_000_0000.nii.gz"
    path.unlink()
    return path


def _non_consecutive_labels(folder: Path) -> Path:
    path = folder / "dataset.json"
    meta = json.loads(path.read_text())
    meta["labels"] = {"background": 0, "liver": 1, "spleen": 5, "kidneys": 3}
    path.write_text(json.dumps(meta))
    return path


@pytest.mark.parametrize("corrupt", [_label_outside, _shape_mismatch, _missing_image, _non_consecutive_labels])
def test_a_folder_nnunet_rejects_is_rejected_naming_the_file(folder: Path, corrupt) -> None:
    bad_file = corrupt(folder)
    with pytest.raises(Exception):  # noqa: B017 - nnU-Net raises RuntimeError or AssertionError
        verify_dataset_integrity(str(folder), num_processes=1)
    with pytest.raises(OwnDatasetError) as error:
        own_dataset_spec("toy", folder)
    assert str(error.value).startswith(f"{bad_file}: ")


def test_label_names_become_region_names_a_command_line_can_carry(folder: Path) -> None:
    path = folder / "dataset.json"
    meta = json.loads(path.read_text())
    meta["labels"] = {"background": 0, "liver": 1, "spleen": 2, "right kidney": 3, "left kidney, lower pole": 4}
    path.write_text(json.dumps(meta))
    assert [r.name for r in own_dataset_spec("toy", folder).regions] == [
        "liver", "spleen", "right_kidney", "left_kidney_lower_pole"]
    with pytest.raises(OwnDatasetError, match=r"region 'a=b'.*letters, digits"):
        own_dataset_spec("toy", folder, {"a=b": [1]})


def test_missing_dataset_json_and_bad_folder_name(folder: Path, tmp_path: Path) -> None:
    (folder / "dataset.json").unlink()
    with pytest.raises(OwnDatasetError, match=r"dataset\.json: missing"):
        own_dataset_spec("toy", folder)
    renamed = tmp_path / "MyToy"
    renamed.mkdir()
    with pytest.raises(OwnDatasetError, match=r"MyToy: the folder name must be"):
        own_dataset_spec("toy", renamed)


def test_a_passed_folder_is_not_read_again_until_a_file_changes(folder: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from mednext.data import convert

    cache = tmp_path / "checked"
    own_dataset_spec("toy", folder, cache_dir=cache)
    checked: list[str] = []
    real = convert.validate_case
    monkeypatch.setattr(convert, "validate_case", lambda case, spec: (checked.append(case.case_id), real(case, spec))[1])
    own_dataset_spec("toy", folder, cache_dir=cache)
    assert checked == []
    _label_outside(folder)  # changes size/mtime: the signature no longer matches
    with pytest.raises(OwnDatasetError, match=r"label values \[9\] out of range"):
        own_dataset_spec("toy", folder, cache_dir=cache)
    assert checked == ["synth_000", "synth_001"]


def test_link_places_a_folder_nnunet_accepts_without_touching_the_source(folder: Path, tmp_path: Path) -> None:
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.rglob("*"))
    linked = link_own_dataset(folder, tmp_path / "nnUNet_raw")
    assert linked == tmp_path / "nnUNet_raw" / "Dataset502_Toy" and (linked / "imagesTr").is_symlink()
    verify_dataset_integrity(str(linked), num_processes=1)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.rglob("*")) == before
    assert [p.name for p in (tmp_path / "nnUNet_raw").iterdir()] == ["Dataset502_Toy"]  # no temp folder left


def test_registering_refuses_a_clashing_id_or_name(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mednext.data.registry.DATASETS", dict(DATASETS))
    spec = own_dataset_spec("toy", folder)
    assert register_dataset(spec) is spec and get_dataset("toy") is spec and get_dataset("Dataset502_Toy") is spec
    btcv_id = folder.parent / "Dataset017_Mine"
    folder.rename(btcv_id)
    with pytest.raises(ValueError, match=r"clashes with registered dataset 'btcv'"):
        register_dataset(own_dataset_spec("mine", btcv_id))
    with pytest.raises(ValueError, match=r"clashes with registered dataset 'toy'"):
        register_dataset(own_dataset_spec("toy", btcv_id.rename(folder.parent / "Dataset503_Toy2")))
