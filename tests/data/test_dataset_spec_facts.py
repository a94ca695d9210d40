"""Each dataset's facts live on its registry entry: finder, generator, challenge naming and
label maps are read from ``DatasetSpec``; checked against nnU-Net's own BraTS conversion and the
paper's table order, and a new entry needs no second edit."""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from nnunetv2.dataset_conversion.Dataset137_BraTS21 import (
    convert_labels_back_to_BraTS,
    copy_BraTS_segmentation_and_convert_labels_to_nnUNet,
)
from nnunetv2.experiment_planning.verify_dataset_integrity import (
    verify_dataset_integrity,
)

from mednext.data.convert import validate_case
from mednext.data.layouts import RawCase, find_cases
from mednext.data.prepare import prepare_dataset
from mednext.data.registry import DATASETS, get_dataset
from mednext.evaluation.submission import package_submission
from mednext.tables.compare import PAPER_DATASETS

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, array: np.ndarray) -> None:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))


def test_brats_labels_go_in_and_out_as_nnunets_own_dataset137_conversion(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    source = rng.choice([0, 1, 2, 4], size=(4, 5, 6))
    _write(tmp_path / "src" / "seg.nii.gz", source)
    _write(tmp_path / "src" / "t1.nii.gz", np.zeros_like(source))
    copy_BraTS_segmentation_and_convert_labels_to_nnUNet(str(tmp_path / "src/seg.nii.gz"), str(tmp_path / "nnunet.nii.gz"))
    nnunet = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "nnunet.nii.gz")))

    spec = dataclasses.replace(get_dataset("brats21"), channel_names=("T1",))
    _, ours, _ = validate_case(RawCase("c", (tmp_path / "src/t1.nii.gz",), tmp_path / "src/seg.nii.gz"), spec)
    np.testing.assert_array_equal(ours, nnunet)  # conversion: the registry's remap

    _write(tmp_path / "pred" / "BraTS2021_00001.nii.gz", nnunet)
    package_submission(tmp_path / "pred", "brats21", tmp_path / "sub.zip")
    with zipfile.ZipFile(tmp_path / "sub.zip") as archive:
        archive.extractall(tmp_path / "out")
    back = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out/BraTS2021_00001.nii.gz")))
    np.testing.assert_array_equal(back, convert_labels_back_to_BraTS(nnunet))  # submission: its inverse
    np.testing.assert_array_equal(back, source)


def test_table_order_is_the_papers() -> None:
    """Table 2 (transcribed from the paper) lists the datasets in the registry's order."""
    transcribed = list(dict.fromkeys(pd.read_csv(REPO / "paper_tables/reported/table2.csv")["dataset"]))
    assert [*PAPER_DATASETS, "average"] == transcribed


def test_every_downloaded_dataset_has_a_layout_and_a_generated_one_a_generator() -> None:
    for spec in DATASETS.values():
        assert (spec.layout is not None) == bool(spec.files), spec.key
        assert (spec.generate is not None) == (not spec.files and spec.nnunet_raw is None), spec.key


def test_a_new_generated_entry_needs_no_other_edit(tmp_path: Path) -> None:
    """A second generated dataset (another key, id and name) is prepared from its entry alone."""
    spec = dataclasses.replace(get_dataset("synthetic"), key="synthetic_small", dataset_id=991,
                               nnunet_name="SynthSmall", expected_training_cases=2)
    folder = prepare_dataset(spec, tmp_path / "downloads", tmp_path / "raw")
    assert folder == tmp_path / "raw" / "Dataset991_SynthSmall"
    verify_dataset_integrity(str(folder), num_processes=1)
    assert not (tmp_path / "downloads").exists()


def test_a_new_downloaded_entry_brings_its_own_finder(tmp_path: Path) -> None:
    found = [RawCase("x_1", (tmp_path / "a.nii.gz",), tmp_path / "b.nii.gz")]
    spec = dataclasses.replace(get_dataset("kits19"), key="kits_mine", layout=lambda root: found)
    assert find_cases(spec, tmp_path) == found
