"""``evaluate --region-preset kits19`` leaves the kidney+tumor composite out of the mean.

The presets once named the composite ``kidney+tumor`` while the dataset registry calls it
``kidney_and_tumor`` (``in_mean=False``), so the mean over classes silently counted it. The test runs
the real CLI on one hand-made case and checks the mean against numpy Dice of kidney and tumor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from mednext.cli import main
from mednext.data.registry import DATASETS


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(array.astype(np.uint8)), str(path))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_kits19_preset_mean_over_classes_is_kidney_and_tumor_only(tmp_path: Path) -> None:
    gt = np.zeros((8, 16, 16), np.uint8)
    gt[1:7, 2:14, 2:14] = 1
    gt[3:5, 5:9, 5:9] = 2
    pred = np.zeros_like(gt)
    pred[1:7, 3:14, 2:12] = 1
    pred[3:6, 8:12, 6:10] = 2  # tumour shifted: kidney, tumor and composite Dice all differ
    _write(tmp_path / "gt" / "case_00000.nii.gz", gt)
    _write(tmp_path / "pred" / "case_00000.nii.gz", pred)
    kidney, tumor = _dice(gt == 1, pred == 1), _dice(gt == 2, pred == 2)
    composite = _dice(gt > 0, pred > 0)
    expected = (kidney + tumor) / 2
    assert abs((kidney + tumor + composite) / 3 - expected) > 0.01  # the old bug would be visible

    out = tmp_path / "fold0.csv"
    assert main(["evaluate", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"), "--out", str(out),
                 "--dataset", "kits19", "--network", "N", "--fold", "0", "--region-preset", "kits19",
                 "--spacing-modes", "paper"]) == 0
    assert main(["summarize", str(out), "--out-dir", str(tmp_path / "summary")]) == 0
    per_fold = pd.read_csv(tmp_path / "summary" / "summary_per_fold.csv")
    dsc = per_fold[per_fold["metric"] == "dsc"].set_index("class")["mean"]
    assert dsc["kidney"] == pytest.approx(kidney) and dsc["tumor"] == pytest.approx(tumor)
    assert dsc["kidney_and_tumor"] == pytest.approx(composite)  # still reported beside the mean
    assert dsc["mean_over_classes"] == pytest.approx(expected)


def test_every_registry_dataset_is_a_preset_with_its_region_names() -> None:
    """The choices of ``--region-preset`` include each dataset key with the registry's region names."""
    from mednext.commands.evaluate import REGION_PRESETS

    for key, spec in DATASETS.items():
        assert list(REGION_PRESETS[key]) == [r.name for r in spec.regions]
    assert REGION_PRESETS["kits19-mednext"] == {"kidney": (1,), "tumor": (2,)}  # docs/sources.md#official-evaluation
