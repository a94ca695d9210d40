"""Plan-only stand-ins of the paper's four datasets at their published geometry.

nnU-Net's planner reads the dataset fingerprint (spacing and cropped shape of every training case,
foreground intensity statistics, how much cropping shrank the images) plus one example image to pick
its image reader; it never opens the other images. A stand-in therefore writes the registry's
``dataset.json``, one 4³ example case, and a fingerprint whose cases have the dataset's published
geometry, and then runs the project's ``plan`` command with ``--no-preprocess``: the plans are those
the real dataset would get (batch Dice, normalisation, topology), in about a second.

Published geometry (z, y, x; medians of the training images):

- BTCV (Landman et al., "Multi-Atlas Labeling Beyond the Cranial Vault", MICCAI 2015 workshop; Synapse
  syn3193805): 512 x 512 in-plane at 0.54-0.98 mm, 2.5-5.0 mm slices, 85-198 slices.
- AMOS22 (Ji et al., NeurIPS 2022 Datasets and Benchmarks): CT 512 x 512 at about 0.7 mm in-plane,
  mostly 5 mm slices, about 100 slices.
- KiTS19 (Heller et al., arXiv:1904.00445): 512 x 512 at about 0.78 mm in-plane, slices of 3 mm in
  the challenge's "interpolated" release, about 100 or more slices.
- BraTS21 (Baid et al., arXiv:2107.02314): 240 x 240 x 155 at 1 mm, skull-stripped; nnU-Net crops to
  the non-zero (brain) box, about 140 x 170 x 140, which keeps about 37 % of the volume.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mednext.cli import main
from mednext.data.convert import dataset_json
from mednext.data.registry import get_dataset


def _slices(spacing: tuple[float, float, float], n_slices: list[int], in_plane: int = 512) -> tuple[list, list]:
    """Cases sharing in-plane geometry with varying slice counts."""
    return [list(spacing)] * len(n_slices), [[n, in_plane, in_plane] for n in n_slices]


#: key -> (spacings, shapes after cropping, median fraction of the volume cropping kept)
GEOMETRY: dict[str, tuple[list, list, float]] = {
    "btcv": (*_slices((3.0, 0.76, 0.76), [85, 120, 147, 160, 198]), 1.0),
    "amos22": (*_slices((5.0, 0.71, 0.71), [70, 90, 103, 120, 150]), 1.0),
    "kits19": (*_slices((3.0, 0.78, 0.78), [60, 90, 107, 150, 300]), 1.0),
    "brats21": ([[1.0, 1.0, 1.0]] * 3, [[134, 165, 131], [140, 171, 137], [147, 178, 144]],
                float(np.prod([140, 171, 137]) / np.prod([155, 240, 240]))),
}
#: CT foreground intensities (HU) and MRI ones (arbitrary units): only the normalisation's inputs.
_CT = {"max": 3000.0, "mean": 100.0, "median": 90.0, "min": -1000.0, "percentile_00_5": -950.0,
       "percentile_99_5": 1500.0, "std": 150.0}
_MRI = {"max": 2000.0, "mean": 400.0, "median": 380.0, "min": 0.0, "percentile_00_5": 10.0,
        "percentile_99_5": 1200.0, "std": 200.0}


def _write_image(path: Path, array: np.ndarray) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.0, 1.0, 1.0))
    sitk.WriteImage(image, str(path))


def write_standin(key: str, raw: Path, preprocessed: Path) -> Path:
    """``raw/<folder>`` (dataset.json, one example case) and ``preprocessed/<folder>/dataset_fingerprint.json``."""
    spec = get_dataset(key)
    spacings, shapes, kept = GEOMETRY[key]
    folder = raw / spec.folder_name
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    (folder / "dataset.json").write_text(json.dumps(dataset_json(spec, 1), indent=2) + "\n")
    for channel in range(len(spec.channel_names)):
        _write_image(folder / "imagesTr" / f"case_000_{channel:04d}.nii.gz", np.full((4, 4, 4), 100.0, np.float32))
    _write_image(folder / "labelsTr" / "case_000.nii.gz", np.ones((4, 4, 4), np.uint8))
    intensities = _CT if spec.modality == "CT" else _MRI
    fingerprint = {"spacings": spacings, "shapes_after_crop": shapes,
                   "foreground_intensity_properties_per_channel": {str(c): intensities for c in range(len(spec.channel_names))},
                   "median_relative_size_after_cropping": kept}
    target = preprocessed / spec.folder_name
    target.mkdir(parents=True, exist_ok=True)
    (target / "dataset_fingerprint.json").write_text(json.dumps(fingerprint) + "\n")
    return target


def plan_standin(key: str, raw: Path, preprocessed: Path) -> Path:
    """Write the stand-in and plan it with the paper's plans (no preprocessing); the plans file."""
    write_standin(key, raw, preprocessed)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["plan", "--dataset", key, "--no-preprocess", "--num-processes", "1"]) == 0
    return Path(out.getvalue().strip().splitlines()[-1])
