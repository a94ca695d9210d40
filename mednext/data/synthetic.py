"""Synthetic abdominal-CT-like demo dataset in nnU-Net v2 raw layout.

Stands in for the paper's CT datasets (§3: BTCV, AMOS22, KiTS19) in CPU demos and tests: CT-like
Hounsfield intensities (portal-venous phase: liver < spleen < kidney cortex, each varying per case),
a blurred acquisition with Gaussian noise, non-overlapping ellipsoid organs whose size, position
and contrast uptake vary per case, and anisotropic spacing (default 2.5 x 0.8 x 0.8 mm, z/y/x) so the
paper's 1 mm isotropic planning really resamples. Three labels, as KiTS19 labels both kidneys as one:
liver, spleen and kidney (both kidneys). They are told apart by appearance (liver ~85 HU, spleen ~55 HU
brighter, kidney cortex ~115 HU brighter still, each well above the voxel noise) and by position (liver right,
spleen left, kidneys posterior, lower and lateral, on either side of a midline muscle block), with a
fat plane of at least 3 mm between neighbouring organs, as perirenal fat and the peritoneal spaces
separate them in a patient. There is no skeleton: nnU-Net's CT normalisation clips bone to the brightest
organ's intensity (the kidney's), and a vertebra that only its position tells apart from a kidney took
far more than the demo's ~50 iterations to learn (probe at 48 iterations: kidney DSC 0.68 with a
vertebra, 0.87 without). The default field of view, 35 x 38 x 38 mm, is a little larger than the
demo's 32^3 mm patch, so every sliding-window tile (8 per case) sees most of the abdomen. With a
45 x 48 x 48 mm view, nnU-Net's network after a few dozen iterations labelled the liver from the
context of the tile it was in: on one case the same trained model scored liver DSC 0.33 with 32^3
tiles and 0.90 with the whole volume as one tile (DEVIATIONS.md, "CPU demo"). Output bytes depend
only on the arguments: SimpleITK's gzip writer stores mtime 0 and no file name, and every random draw
comes from a generator seeded by ``(seed, case)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from mednext.atomic import atomic_directory

#: Label names in nnU-Net order (0 is background), as written to ``dataset.json``.
SYNTHETIC_LABELS: dict[str, int] = {"background": 0, "liver": 1, "spleen": 2, "kidney": 3}

_AIR_HU = -1000.0
_FAT_HU = -100.0
_MUSCLE_HU = 50.0
#: Noise of the acquisition (HU, per voxel) and the in-plane/through-plane blur of the scanner (mm).
_NOISE_HU = 12.0
_BLUR_MM = 0.6
#: Fat plane between neighbouring organs (mm): in the abdomen, perirenal fat and the peritoneal spaces
#: separate liver, spleen and kidneys; without it, touching organs form one bright blob.
_FAT_PLANE_MM = 3.0


@dataclass(frozen=True)
class _Organ:
    """One labelled ellipsoid: centre and radii as fractions of the body half-axes (z, y, x), mean HU."""

    label: int
    centre: tuple[float, float, float]
    radii: tuple[float, float, float]
    hu: float


# Patient-right is image -x, posterior is +y, cranial is +z in this toy geometry; only plausibility
# matters. Liver and spleen sit cranially, the kidneys caudally (the right one lower, as in most people).
_ORGANS: tuple[_Organ, ...] = (
    _Organ(1, (0.30, -0.10, -0.40), (0.60, 0.60, 0.50), 85.0),  # liver: large, right upper abdomen
    _Organ(2, (0.45, 0.00, 0.50), (0.55, 0.50, 0.40), 140.0),  # spleen: left, posterior
    _Organ(3, (-0.50, 0.50, -0.55), (0.50, 0.40, 0.28), 255.0),  # right kidney: caudal, behind the liver
    _Organ(3, (-0.45, 0.50, 0.55), (0.50, 0.40, 0.28), 255.0),  # left kidney: behind the spleen, a little higher
)


def case_ids(n_cases: int, prefix: str = "synth") -> list[str]:
    """Case identifiers of the synthetic dataset, e.g. ``synth_000``."""
    return [f"{prefix}_{i:03d}" for i in range(n_cases)]


def _ellipsoid(grid: tuple[np.ndarray, np.ndarray, np.ndarray], centre: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Boolean mask of the ellipsoid with ``centre`` and ``radii`` (mm) on a (z, y, x) mm grid."""
    z, y, x = grid
    return ((z - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + ((x - centre[2]) / radii[2]) ** 2 <= 1.0


def synthesize_case(
    rng: np.random.Generator, shape: tuple[int, int, int], spacing: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """One (image int16 HU, label uint8) pair in (z, y, x) order; organs never overlap."""
    sz = np.asarray(spacing, dtype=np.float64)
    extent = np.asarray(shape, dtype=np.float64) * sz
    axes = [(np.arange(n) + 0.5) * s - e / 2.0 for n, s, e in zip(shape, sz, extent)]
    grid = tuple(np.meshgrid(*axes, indexing="ij"))
    z, y, x = grid

    # Body: an elliptic cylinder along z filling most of the in-plane field of view.
    body_half = np.array([extent[0] / 2.0, extent[1] * 0.44, extent[2] * 0.47]) * rng.uniform(0.93, 1.0, 3)
    body = (y / body_half[1]) ** 2 + (x / body_half[2]) ** 2 <= 1.0
    muscle = body & ((y / (body_half[1] * 0.9)) ** 2 + (x / (body_half[2] * 0.92)) ** 2 > 1.0)
    # paraspinal muscle where the vertebra would be (no bone, see the module docstring)
    midline = ((y - body_half[1] * 0.62) / (body_half[1] * 0.2)) ** 2 + (x / (body_half[2] * 0.14)) ** 2 <= 1.0

    image = np.full(shape, _AIR_HU, dtype=np.float64)
    image[body] = _FAT_HU + rng.normal(0.0, 8.0)
    image[muscle] = _MUSCLE_HU + rng.normal(0.0, 5.0)
    image[midline & body] = _MUSCLE_HU + rng.normal(0.0, 5.0)
    label = np.zeros(shape, dtype=np.uint8)
    for organ in _ORGANS:
        centre = (np.asarray(organ.centre) + rng.normal(0.0, 0.04, 3)) * body_half
        radii = np.asarray(organ.radii) * body_half * rng.uniform(0.85, 1.15, 3)
        radii[0] = max(radii[0], 2.0 * sz[0])  # at least a few slices thick despite coarse z spacing
        free = ndimage.distance_transform_edt(label == 0, sampling=sz) > _FAT_PLANE_MM if label.any() else True
        mask = _ellipsoid(grid, centre, radii) & body & ~muscle & ~midline & free
        label[mask] = organ.label
        image[mask] = organ.hu + rng.normal(0.0, 8.0)  # contrast uptake varies per case
    image = ndimage.gaussian_filter(image, sigma=_BLUR_MM / sz, mode="nearest")
    image += rng.normal(0.0, _NOISE_HU, size=shape)
    return np.clip(np.rint(image), -1024, 3071).astype(np.int16), label


def _write_nifti(array: np.ndarray, spacing_zyx: tuple[float, float, float], path: Path) -> None:
    """Write a (z, y, x) array as compressed NIfTI with identity direction and origin 0."""
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(tuple(float(s) for s in reversed(spacing_zyx)))
    img.SetOrigin((0.0, 0.0, 0.0))
    sitk.WriteImage(img, str(path), True)


def dataset_json(name: str, n_cases: int) -> dict[str, object]:
    """nnU-Net v2 ``dataset.json`` content for the synthetic dataset."""
    return {
        "name": name,
        "description": "Synthetic abdominal-CT-like demo dataset (deterministic, generated by mednext.data.synthetic)",
        "reference": "generated",
        "licence": "CC0-1.0 (generated data)",
        "channel_names": {"0": "CT"},
        "labels": dict(SYNTHETIC_LABELS),
        "numTraining": n_cases,
        "file_ending": ".nii.gz",
    }


def write_synthetic_dataset(
    raw_root: Path,
    dataset_id: int = 990,
    name: str = "SyntheticAbdomen",
    n_cases: int = 8,
    seed: int = 0,
    shape: tuple[int, int, int] = (14, 48, 48),
    spacing: tuple[float, float, float] = (2.5, 0.8, 0.8),
) -> Path:
    """Write ``raw_root/Dataset{id:03d}_{name}`` (dataset.json, imagesTr, labelsTr) and return it.

    ``shape`` and ``spacing`` are (z, y, x). The folder is built under a temporary name and renamed
    when complete; an existing folder of the same name is replaced.
    """
    if n_cases < 1:
        raise ValueError(f"n_cases must be >= 1, found {n_cases}")
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"shape must be 3 sizes (z, y, x) of at least 8 voxels, found {shape}")
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"spacing must be 3 positive values (z, y, x) in mm, found {spacing}")
    final = Path(raw_root) / f"Dataset{dataset_id:03d}_{name}"
    with atomic_directory(final) as tmp:
        (tmp / "imagesTr").mkdir()
        (tmp / "labelsTr").mkdir()
        for index, case in enumerate(case_ids(n_cases)):
            image, label = synthesize_case(np.random.default_rng([seed, index]), tuple(shape), tuple(spacing))
            _write_nifti(image, spacing, tmp / "imagesTr" / f"{case}_0000.nii.gz")
            _write_nifti(label, spacing, tmp / "labelsTr" / f"{case}.nii.gz")
        (tmp / "dataset.json").write_text(json.dumps(dataset_json(name, n_cases), indent=2) + "\n")
    return final
