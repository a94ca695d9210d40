"""Tiny generated archives in each dataset's real raw layout (docs/sources.md#datasets), for the loopback tests.

Volumes are (z, y, x) = (6, 12, 10) with anisotropic spacing; each builder returns the archive bytes
and the label arrays it wrote (source values), so tests can compare conversion output with them.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SHAPE = (6, 12, 10)
SPACING = (3.0, 0.8, 0.75)  # (z, y, x)


def nifti_bytes(array: np.ndarray, spacing: tuple[float, float, float] = SPACING) -> bytes:
    """Compressed NIfTI bytes of a (z, y, x) array."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in reversed(spacing)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.nii.gz"
        sitk.WriteImage(image, str(path), True)
        return path.read_bytes()


def ct_volume(rng: np.random.Generator, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    return rng.normal(40.0, 50.0, size=shape).astype(np.int16)


def mr_volume(rng: np.random.Generator, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    return rng.uniform(0.0, 1000.0, size=shape).astype(np.float32)


def label_volume(rng: np.random.Generator, values: list[int], shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    """Background plus one slab-shaped blob per value (all given values present)."""
    label = np.zeros(shape, dtype=np.uint8)
    for i, value in enumerate(values):
        z = i % shape[0]
        y0 = int(rng.integers(0, shape[1] - 3))
        label[z, y0:y0 + 3, 1 + (i % (shape[2] - 2))] = value
    return label


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


Mutator = Callable[[str, dict[str, np.ndarray]], None]


def btcv_archive(nums: tuple[int, ...] = (1, 2, 5), seed: int = 0, mutate: Mutator | None = None):
    """``RawData.zip``: RawData/Training/{img,label}, plus an unlabelled Testing case that must be ignored."""
    rng = np.random.default_rng(seed)
    files, labels = {}, {}
    for num in nums:
        arrays = {"img": ct_volume(rng), "label": label_volume(rng, list(range(1, 14)))}
        if mutate:
            mutate(f"BTCV_{num:04d}", arrays)
        files[f"RawData/Training/img/img{num:04d}.nii.gz"] = nifti_bytes(arrays["img"])
        files[f"RawData/Training/label/label{num:04d}.nii.gz"] = nifti_bytes(arrays["label"])
        labels[f"BTCV_{num:04d}"] = arrays["label"]
    files["RawData/Testing/img/img0061.nii.gz"] = nifti_bytes(ct_volume(rng))
    return zip_bytes(files), labels


def amos22_archive(ids: tuple[int, ...] = (1, 4, 5, 507), seed: int = 1):
    """``amos22.zip``: amos22/{imagesTr,labelsTr,imagesVa}; ids >= 500 are MRI and must be excluded."""
    rng = np.random.default_rng(seed)
    files, labels = {"amos22/dataset.json": b"{}"}, {}
    for num in ids:
        label = label_volume(rng, list(range(1, 16)))
        files[f"amos22/imagesTr/amos_{num:04d}.nii.gz"] = nifti_bytes(ct_volume(rng) if num < 500 else mr_volume(rng))
        files[f"amos22/labelsTr/amos_{num:04d}.nii.gz"] = nifti_bytes(label)
        if num < 500:
            labels[f"amos_{num:04d}"] = label
    files["amos22/imagesVa/amos_0008.nii.gz"] = nifti_bytes(ct_volume(rng))
    return zip_bytes(files), labels


def kits19_files(commit: str, n_cases: int = 3, seed: int = 2, mutate: Mutator | None = None):
    """The kits19 repository archive (labels) and the per-case imaging files, keyed by case id."""
    rng = np.random.default_rng(seed)
    prefix = f"kits19-{commit}/"
    repo = {prefix + "README.md": b"kits19\n", prefix + "data/kits.json": b"[]"}
    images, labels = {}, {}
    for i in range(n_cases):
        case = f"case_{i:05d}"
        arrays = {"img": ct_volume(rng), "label": label_volume(rng, [1, 2, 1])}
        if mutate:
            mutate(case, arrays)
        repo[prefix + f"data/{case}/segmentation.nii.gz"] = nifti_bytes(arrays["label"])
        images[case] = nifti_bytes(arrays["img"])
        labels[case] = arrays["label"]
    return zip_bytes(repo), images, labels


def brats21_archive(n_cases: int = 3, seed: int = 3, mutate: Mutator | None = None, skip: set[str] | None = None):
    """The BraTS21 training tar: BraTS2021_XXXXX/BraTS2021_XXXXX_{t1,t1ce,t2,flair,seg}.nii.gz."""
    rng = np.random.default_rng(seed)
    files, labels = {}, {}
    top = "RSNA_ASNR_MICCAI_BraTS2021_TrainingData_16July2021/"
    for i in range(n_cases):
        case = f"BraTS2021_{i:05d}"
        arrays = {m: mr_volume(rng) for m in ("t1", "t1ce", "t2", "flair")}
        arrays["seg"] = label_volume(rng, [1, 2, 4, 2])
        if mutate:
            mutate(case, arrays)
        for key, array in arrays.items():
            if skip and f"{case}_{key}" in skip:
                continue
            files[f"{top}{case}/{case}_{key}.nii.gz"] = nifti_bytes(array)
        labels[case] = arrays["seg"]
    return tar_bytes(files), labels
