"""Convert validated raw cases into an nnU-Net v2 raw dataset (``dataset.json``, ``imagesTr``, ``labelsTr``).

Every case is checked before anything is kept: all modalities present, one 3-D grid (shape and
spacing agree between every image and the label), no NaN in any image, label values integral and
within the dataset's source set. Labels are remapped to nnU-Net order (BraTS 1,2,4 -> 2,1,3, as
nnU-Net's ``Dataset137_BraTS21.py``; docs/sources.md#brats21). The dataset is written to a temporary
folder next to the target and renamed only when every case passed, so a failure leaves no output folder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from mednext.atomic import atomic_directory
from mednext.data.errors import ConversionError
from mednext.data.layouts import RawCase
from mednext.data.registry import DatasetSpec


def _zyx(size_xyz: Sequence[int]) -> tuple[int, ...]:
    """SimpleITK (x, y, z) size -> numpy (z, y, x) shape."""
    return tuple(int(s) for s in reversed(size_xyz))


def _spacing_zyx(spacing_xyz: Sequence[float]) -> tuple[float, ...]:
    """SimpleITK (x, y, z) spacing -> (z, y, x) in mm, rounded for messages only by the caller."""
    return tuple(float(s) for s in reversed(spacing_xyz))


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def _read(path: Path, case_id: str, what: str) -> sitk.Image:
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise ConversionError(f"case {case_id}: cannot read {what} {path}: {str(exc).strip().splitlines()[-1]}", path) from exc
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ConversionError(
            f"case {case_id}: expected a 3-D single-component {what}, found {image.GetDimension()}-D with "
            f"{image.GetNumberOfComponentsPerPixel()} components in {path}", path
        )
    return image


def _count_nan(path: Path, image: sitk.Image) -> int:
    """NaN voxels in a float image file.

    Counted on the stored values with nibabel: SimpleITK (ITK 5.4 NIfTI reader) silently turns NaN
    into 0 on reading, which would hide corrupt voxels from both this check and nnU-Net's.
    """
    if "float" not in image.GetPixelIDTypeAsString():
        return 0
    data = np.asanyarray(nib.load(str(path)).dataobj)
    return int(np.isnan(data).sum()) if np.issubdtype(data.dtype, np.floating) else 0


def validate_case(case: RawCase, spec: DatasetSpec) -> tuple[list[sitk.Image], np.ndarray, sitk.Image]:
    """Check one case; return its images, the remapped label array (uint8, z/y/x) and the label image.

    Raises :class:`ConversionError` naming the case and the problem.
    """
    if len(case.images) != len(spec.channel_names):
        raise ConversionError(
            f"case {case.case_id}: expected {len(spec.channel_names)} channels {spec.channel_names}, found {len(case.images)}"
        )
    for channel, path in zip(spec.channel_names, case.images):
        if not path.is_file():
            raise ConversionError(f"case {case.case_id}: missing modality {channel} (expected file {path})", path)
    if not case.label.is_file():
        raise ConversionError(f"case {case.case_id}: missing label file (expected {case.label})", case.label)
    images = [_read(p, case.case_id, f"{c} image") for c, p in zip(spec.channel_names, case.images)]
    label_image = _read(case.label, case.case_id, "label")

    ref_shape, ref_spacing = _zyx(label_image.GetSize()), _spacing_zyx(label_image.GetSpacing())
    for channel, path, image in zip(spec.channel_names, case.images, images):
        shape, spacing = _zyx(image.GetSize()), _spacing_zyx(image.GetSpacing())
        if shape != ref_shape:
            raise ConversionError(
                f"case {case.case_id}: image/label shape mismatch: {channel} image {path.name} has shape {shape} "
                f"(z, y, x), label {case.label.name} has {ref_shape}", path
            )
        if not np.allclose(spacing, ref_spacing):  # nnU-Net's own tolerance (verify_dataset_integrity)
            raise ConversionError(
                f"case {case.case_id}: image/label spacing mismatch: {channel} image {path.name} has spacing "
                f"{_fmt(spacing)} mm (z, y, x), label {case.label.name} has {_fmt(ref_spacing)}", path
            )
        n_nan = _count_nan(path, image)
        if n_nan:
            raise ConversionError(f"case {case.case_id}: {channel} image {path.name} contains {n_nan} NaN voxels", path)

    label = sitk.GetArrayFromImage(label_image)
    if np.issubdtype(label.dtype, np.floating):
        if _count_nan(case.label, label_image) or not np.array_equal(label, np.round(label)):
            raise ConversionError(f"case {case.case_id}: label {case.label.name} has non-integer or NaN values", case.label)
        label = label.astype(np.int64)
    found = sorted(int(v) for v in np.unique(label))
    unexpected = [v for v in found if v not in spec.source_label_values]
    if unexpected:
        raise ConversionError(
            f"case {case.case_id}: label values {unexpected} out of range in {case.label.name}; expected a subset of "
            f"{list(spec.source_label_values)}, found {found}", case.label
        )
    table = spec.remap()
    lut = np.zeros(max(table) + 1, dtype=np.uint8)
    for source, target in table.items():
        lut[source] = target
    return images, lut[label], label_image


def dataset_json(spec: DatasetSpec, n_cases: int) -> dict[str, object]:
    """nnU-Net v2 ``dataset.json`` for ``spec``."""
    return {
        "name": spec.nnunet_name,
        "description": spec.title,
        "reference": spec.homepage,
        "licence": spec.licence,
        "channel_names": spec.channel_dict(),
        "labels": spec.label_dict(),
        "numTraining": n_cases,
        "file_ending": ".nii.gz",
    }


def _write_case(case: RawCase, images: list[sitk.Image], label: np.ndarray, label_image: sitk.Image, out: Path) -> None:
    for channel, (path, image) in enumerate(zip(case.images, images)):
        target = out / "imagesTr" / f"{case.case_id}_{channel:04d}.nii.gz"
        if path.name.endswith(".nii.gz"):
            shutil.copyfile(path, target)  # lossless, and exactly what was validated
        else:
            sitk.WriteImage(image, str(target), True)
    seg = sitk.GetImageFromArray(label)
    seg.CopyInformation(label_image)
    sitk.WriteImage(seg, str(out / "labelsTr" / f"{case.case_id}.nii.gz"), True)


def convert_cases(
    spec: DatasetSpec,
    cases: Sequence[RawCase],
    raw_root: Path,
    *,
    expected_cases: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Validate and write ``cases`` as ``raw_root/DatasetXXX_Name``; return the folder.

    ``expected_cases`` defaults to the paper's count in the registry (enforced for real data; pass the
    fixture's count for small test archives).
    """
    expected = spec.expected_training_cases if expected_cases is None else expected_cases
    if len(cases) != expected:
        raise ConversionError(f"{spec.key}: expected {expected} training cases, found {len(cases)}")
    ids = [c.case_id for c in cases]
    if len(set(ids)) != len(ids):
        raise ConversionError(f"{spec.key}: duplicate case ids {sorted({i for i in ids if ids.count(i) > 1})}")
    raw_root = Path(raw_root)
    final = raw_root / spec.folder_name
    if final.exists() and not overwrite:
        raise ConversionError(f"{spec.key}: output {final} already exists; pass overwrite=True to replace it")
    with atomic_directory(final) as tmp:
        (tmp / "imagesTr").mkdir()
        (tmp / "labelsTr").mkdir()
        for case in tqdm(cases, desc=f"convert {spec.key}", unit="case", disable=not progress):
            images, label, label_image = validate_case(case, spec)
            _write_case(case, images, label, label_image, tmp)
        (tmp / "dataset.json").write_text(json.dumps(dataset_json(spec, len(cases)), indent=2) + "\n")
    return final
