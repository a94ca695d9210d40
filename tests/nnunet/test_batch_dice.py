"""3d_fullres batch Dice exactly when the official v1 planner made two stages.

The expected values come from the official code's rule (MedNeXt ``nnunet_mednext/run/default_configuration.py``
~L71: batch Dice for 2d or a plan with more than one stage; ``experiment_planner_baseline_3DUNet.py``
~L285-327: a low-res stage when the 1 mm median image holds >= 4 patches, kept only when at least
2x smaller than full resolution), worked by hand below, and from the datasets' published geometry.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from _nnunet_support import set_nnunet_env
from _standins import GEOMETRY

from mednext.cli import main
from mednext.data.synthetic import write_synthetic_dataset
from mednext.nnunet.planning import v1_batch_dice, v1_has_lowres_stage, v1_median_shape

P128 = (128, 128, 128)
MM1 = (1.0, 1.0, 1.0)


# Published geometry of the paper's datasets, as the plan-only stand-ins use it (_standins.py cites the sources).
BTCV, AMOS22, KITS19, BRATS21 = (tuple(GEOMETRY[key][:2]) for key in ("btcv", "amos22", "kits19", "brats21"))


@pytest.mark.parametrize(
    ("name", "cases", "expected"),
    [("BTCV", BTCV, True), ("AMOS22", AMOS22, True), ("KiTS19", KITS19, True), ("BraTS21", BRATS21, False)],
)
def test_paper_datasets_get_v1_batch_dice(name: str, cases: tuple[list, list], expected: bool) -> None:
    assert v1_batch_dice(*cases, patch_size=P128, target_spacing=MM1) is expected, name


def test_median_is_per_axis_over_unrounded_resampled_shapes() -> None:
    # v1: np.median(spacing / target * size, 0); z: 25, 30, 27 -> 27; y: 40, 20, 4.5 -> 20; x: 40, 90, 4.5 -> 40.
    median = v1_median_shape([(2.5, 0.8, 0.8), (1.0, 1.0, 1.0), (3.0, 0.5, 0.5)], [(10, 50, 50), (30, 20, 90), (9, 9, 9)], MM1)
    assert median == pytest.approx([27.0, 20.0, 40.0])


def test_stage_rule_thresholds_worked_by_hand() -> None:
    patch = (16, 16, 16)  # 4096 voxels; v1 plans a low-res stage from 4 patches = 16384 voxels on
    # < 4 patches: one stage.
    assert not v1_has_lowres_stage((16, 16, 63), patch, MM1)  # 16128 voxels
    # >= 4 but < ~8 patches: the low-res stage shrinks to <= 16384 voxels, which is not 2x smaller
    # than full resolution, so v1 drops it (uncropped BraTS at 128³ is such a case: 240*240*155 is
    # 4.3 patches of 128³, so it too stays one stage).
    assert not v1_has_lowres_stage((16, 32, 60), patch, MM1)  # 30720 voxels = 7.5 patches
    assert not v1_has_lowres_stage((155, 240, 240), P128, MM1)
    # Well above 8 patches: low-res stage <= 16384 voxels, < half of full resolution -> two stages.
    assert v1_has_lowres_stage((16, 32, 80), patch, MM1)  # 40960 voxels = 10 patches


def test_bad_fingerprint_is_rejected() -> None:
    with pytest.raises(ValueError, match="one spacing and one shape per case"):
        v1_median_shape([(1.0, 1.0, 1.0)], [(10, 10, 10), (10, 10, 10)], MM1)


def _plan(dataset_id: int, plans_name: str, patch: int) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["plan", "--dataset", str(dataset_id), "--plans-name", plans_name, "--no-preprocess",
                     "--num-processes", "1", "--patch-size", str(patch), str(patch), str(patch)]) == 0
    return json.loads(Path(out.getvalue().strip().splitlines()[-1]).read_text())


def test_plan_writes_v1_batch_dice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One fingerprint (nnU-Net's extraction is the slow part), planned with two patches.

    CT-like, anisotropic: 20 x 48 x 48 voxels at 2.5 x 0.8 x 0.8 mm -> 50 x 38 x 38 at 1 mm = 72200
    voxels: 17.6 patches of 16³ (two v1 stages -> batch Dice) but 0.03 patches of 128³ (one stage).
    """
    dirs = set_nnunet_env(monkeypatch, tmp_path)
    write_synthetic_dataset(dirs["nnUNet_raw"], dataset_id=991, name="LargeCT", n_cases=2, shape=(20, 48, 48),
                            spacing=(2.5, 0.8, 0.8))
    small_patch = _plan(991, "nnUNetPlans_p16", 16)
    paper_patch = _plan(991, "nnUNetPlans_1mm", 128)
    assert small_patch["configurations"]["3d_fullres"]["median_image_size_in_voxels"] == [50, 38, 38]
    assert small_patch["configurations"]["3d_fullres"]["batch_dice"] is True
    assert paper_patch["configurations"]["3d_fullres"]["batch_dice"] is False
    for plans in (small_patch, paper_patch):
        assert plans["configurations"]["2d"]["batch_dice"] is True  # v1: 2D always batch Dice
        assert "3d_lowres" not in plans["configurations"]  # still full resolution only
