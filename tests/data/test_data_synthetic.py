"""The synthetic demo dataset: determinism, geometry, labels, and nnU-Net's own integrity check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity
from scipy import ndimage

from mednext.data.registry import get_dataset
from mednext.data.synthetic import write_synthetic_dataset


def _all_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    a = write_synthetic_dataset(tmp_path / "a", n_cases=3, seed=7)
    b = write_synthetic_dataset(tmp_path / "b", n_cases=3, seed=7)
    c = write_synthetic_dataset(tmp_path / "c", n_cases=3, seed=8)
    bytes_a, bytes_b, bytes_c = _all_bytes(a), _all_bytes(b), _all_bytes(c)
    assert sorted(bytes_a) == [
        "dataset.json",
        "imagesTr/synth_000_0000.nii.gz",
        "imagesTr/synth_001_0000.nii.gz",
        "imagesTr/synth_002_0000.nii.gz",
        "labelsTr/synth_000.nii.gz",
        "labelsTr/synth_001.nii.gz",
        "labelsTr/synth_002.nii.gz",
    ]
    assert bytes_a == bytes_b
    for key in bytes_a:
        if key != "dataset.json":
            assert bytes_a[key] != bytes_c[key], key
    # cases differ from each other within one dataset, too
    assert bytes_a["labelsTr/synth_000.nii.gz"] != bytes_a["labelsTr/synth_001.nii.gz"]


def _assert_separate_organs(label: np.ndarray, spacing: tuple[float, float, float], case: str) -> None:
    """A fat plane of more than 3 mm between every pair of organs (the generator's), measured by scipy's
    distance transform, so that each organ is its own connected component, as in a patient."""
    for organ in (1, 2, 3):
        gap_mm = ndimage.distance_transform_edt(label != organ, sampling=spacing)
        assert gap_mm[(label > 0) & (label != organ)].min() > 3.0, (case, organ)
    assert [ndimage.label(label == k)[1] for k in (1, 2, 3)] == [1, 1, 2], case  # one liver, one spleen, two kidneys


def test_demo_default_cases_hold_every_organ_apart_and_fit_a_few_patches(tmp_path: Path) -> None:
    """The demo's own dataset (registry defaults: 8 cases, seed 0, the default geometry)."""
    folder = write_synthetic_dataset(tmp_path, n_cases=get_dataset("synthetic").expected_training_cases)
    for seg_file in sorted((folder / "labelsTr").glob("*.nii.gz")):
        seg = sitk.ReadImage(str(seg_file))
        label = sitk.GetArrayFromImage(seg)
        assert set(np.unique(label).tolist()) == {0, 1, 2, 3}, seg_file.name
        _assert_separate_organs(label, tuple(reversed(seg.GetSpacing())), seg_file.name)
        # at 1 mm the field of view is at most 1.25 patches of 32 per axis: each sliding-window tile sees
        # most of the abdomen (mednext.data.synthetic, DEVIATIONS.md "CPU demo")
        extent_mm = np.array(label.shape) * np.array(tuple(reversed(seg.GetSpacing())))
        assert (extent_mm >= 32).all() and (extent_mm <= 40).all(), extent_mm


def test_geometry_intensities_and_labels(tmp_path: Path) -> None:
    folder = write_synthetic_dataset(tmp_path, dataset_id=991, name="Demo", n_cases=2, shape=(24, 48, 40),
                                     spacing=(3.0, 0.7, 0.9))
    assert folder == tmp_path / "Dataset991_Demo"
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "CT"}
    # the labels the workflow evaluates (the registry's synthetic entry) are the ones written
    assert meta["labels"] == get_dataset("synthetic").label_dict()
    assert meta["numTraining"] == 2 and meta["file_ending"] == ".nii.gz"
    for case in ("synth_000", "synth_001"):
        img = sitk.ReadImage(str(folder / "imagesTr" / f"{case}_0000.nii.gz"))
        seg = sitk.ReadImage(str(folder / "labelsTr" / f"{case}.nii.gz"))
        # SimpleITK reports spacing (x, y, z); the API takes (z, y, x)
        assert img.GetSpacing() == pytest.approx((0.9, 0.7, 3.0)) and seg.GetSpacing() == pytest.approx((0.9, 0.7, 3.0))
        image, label = sitk.GetArrayFromImage(img), sitk.GetArrayFromImage(seg)
        assert image.shape == label.shape == (24, 48, 40)
        assert image.dtype == np.int16 and label.dtype == np.uint8
        assert set(np.unique(label).tolist()) == {0, 1, 2, 3}
        # CT-like: air outside the body, organs brighter than fat, liver < spleen < kidney (portal-venous phase)
        assert image[0, 0, 0] < -900
        core = {k: image[ndimage.binary_erosion(label == k, iterations=2)] for k in (1, 2, 3)}
        assert all(core[k].size > 0 for k in core)
        means = {k: float(core[k].mean()) for k in core}
        assert all(40 < means[k] < 300 for k in means), means
        # learnable by appearance: inside the organs (away from the blurred rim) neighbouring organs differ
        # by more than twice the voxel noise
        for darker, brighter in ((1, 2), (2, 3)):
            assert means[brighter] - means[darker] > 2 * max(core[darker].std(), core[brighter].std()), means
        # no voxel outside the organs is as bright as a kidney (no skeleton: see mednext.data.synthetic)
        assert np.percentile(image[label == 0], 99.9) < means[3] - 3 * core[3].std()
        _assert_separate_organs(label, (3.0, 0.7, 0.9), case)
        # the liver is the largest organ
        counts = np.bincount(label.ravel(), minlength=4)
        assert counts[1] == counts[1:].max()
        # learnable by position: liver on one side (-x), spleen on the other, a kidney on each side
        x_mid = (label.shape[2] - 1) / 2
        xs = {k: np.nonzero(label == k)[2] for k in range(1, 4)}
        assert xs[1].mean() < x_mid < xs[2].mean(), {k: v.mean() for k, v in xs.items()}
        assert (xs[3] < x_mid).sum() > 0.3 * xs[3].size and (xs[3] > x_mid).sum() > 0.3 * xs[3].size
        # kidneys caudal (lower z) to liver and spleen
        centre_z = {k: float(np.nonzero(label == k)[0].mean()) for k in range(1, 4)}
        assert centre_z[3] < min(centre_z[1], centre_z[2]), centre_z


def test_existing_folder_is_replaced_and_no_temp_left(tmp_path: Path) -> None:
    write_synthetic_dataset(tmp_path, n_cases=4)
    folder = write_synthetic_dataset(tmp_path, n_cases=2)
    assert len(list((folder / "imagesTr").iterdir())) == 2
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]


def test_bad_arguments_are_rejected_without_output(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="spacing must be 3 positive values"):
        write_synthetic_dataset(tmp_path, spacing=(2.5, 0.0, 0.8))
    with pytest.raises(ValueError, match="n_cases must be >= 1"):
        write_synthetic_dataset(tmp_path, n_cases=0)
    assert not any(tmp_path.glob("Dataset*"))


def test_passes_nnunet_verify_dataset_integrity(tmp_path: Path, nnunet_env: dict[str, Path]) -> None:
    folder = write_synthetic_dataset(nnunet_env["nnUNet_raw"], n_cases=3)
    verify_dataset_integrity(str(folder), num_processes=1)  # raises on any problem
