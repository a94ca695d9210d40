"""The paper's plans (1 mm isotropic, 128³ / 512², batch 2 / 14) from nnU-Net's planner."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from _nnunet_support import DATASET_ID, set_nnunet_env, write_small_dataset
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from mednext.cli import main
from mednext.nnunet.trainer_classes import trainer_for_network


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Path], str]]:
    """The synthetic dataset planned with the paper defaults; yields the folders and the CLI output."""
    with pytest.MonkeyPatch.context() as mp:
        dirs = set_nnunet_env(mp, tmp_path_factory.mktemp("plans"))
        write_small_dataset(dirs["nnUNet_raw"])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["plan", "--dataset", str(DATASET_ID), "--no-preprocess", "--num-processes", "1"]) == 0
        yield dirs, out.getvalue()


@pytest.fixture
def plans_env(planned: tuple[dict[str, Path], str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    for name, path in planned[0].items():
        monkeypatch.setenv(name, str(path))
    return planned[0]


def test_paper_plans_on_anisotropic_dataset(plans_env: dict[str, Path], planned: tuple[dict[str, Path], str]) -> None:
    plans_file = Path(planned[1].strip().splitlines()[-1])
    assert plans_file == plans_env["nnUNet_preprocessed"] / "Dataset990_SyntheticAbdomen" / "nnUNetPlans_1mm.json"
    plans = json.loads(plans_file.read_text())

    # The input really is anisotropic: 2.5 mm slices, 0.8 mm in-plane (z, y, x).
    assert plans["original_median_spacing_after_transp"] == pytest.approx([2.5, 0.8, 0.8])
    assert plans["plans_name"] == "nnUNetPlans_1mm"
    assert plans["experiment_planner_used"] == "FixedPatchPlanner1mm"
    configs = plans["configurations"]
    assert set(configs) == {"3d_fullres", "2d"}  # no lowres / cascade
    full, flat = configs["3d_fullres"], configs["2d"]
    assert full["spacing"] == [1.0, 1.0, 1.0]
    assert full["patch_size"] == [128, 128, 128]
    assert full["batch_size"] == 2
    assert flat["spacing"] == [1.0, 1.0]
    assert flat["patch_size"] == [512, 512]
    assert flat["batch_size"] == 14
    # nnU-Net's own U-Net topology for the fixed patch: 2x pooling down to 4 voxels per axis.
    assert full["architecture"]["arch_kwargs"]["strides"] == [[1, 1, 1]] + [[2, 2, 2]] * 5
    assert flat["architecture"]["arch_kwargs"]["strides"] == [[1, 1]] + [[2, 2]] * 7
    # Resampling to 1 mm: 12 x 40 x 40 voxels at 2.5 x 0.8 x 0.8 mm -> 30 x 32 x 32.
    assert full["median_image_size_in_voxels"] == [30, 32, 32]


def test_plans_patch_not_divisible_by_16_is_rejected_for_mednext(plans_env: dict[str, Path]) -> None:
    assert main(["plan", "--dataset", str(DATASET_ID), "--plans-name", "nnUNetPlans_p24", "--no-preprocess",
                 "--patch-size", "24", "24", "24", "--num-processes", "1"]) == 0
    plans = PlansManager(str(plans_env["nnUNet_preprocessed"] / "Dataset990_SyntheticAbdomen" / "nnUNetPlans_p24.json"))
    config = plans.get_configuration("3d_fullres")
    assert list(config.patch_size) == [24, 24, 24]
    with pytest.raises(ValueError, match=r"divisible by 16.*nnUNetPlans_p24.*\[24, 24, 24\]"):
        trainer_for_network("MedNeXt-S_k3").build_network_architecture(plans, config, 1, 5, True)
    # nnU-Net's own architecture has no such constraint.
    network = trainer_for_network("nnUNet").build_network_architecture(plans, config, 1, 5, True)
    assert type(network).__name__ == "PlainConvUNet"
    # A patch nnU-Net's topology would silently enlarge is refused instead.
    with pytest.raises(ValueError, match=r"patch \[30, 30, 30\].*would use \[32, 32, 32\]"):
        main(["plan", "--dataset", str(DATASET_ID), "--plans-name", "nnUNetPlans_p30", "--no-preprocess",
              "--patch-size", "30", "30", "30", "--num-processes", "1"])
