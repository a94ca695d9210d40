"""Find the training cases of each dataset in its own raw layout (docs/sources.md#datasets).

BTCV ``RawData/Training/{img/img0001,label/label0001}.nii.gz``; AMOS22 ``amos22/{imagesTr,labelsTr}/
amos_0001.nii.gz`` (ids < 500 are CT, the rest MRI and excluded); KiTS19 ``data/case_00000/
{imaging,segmentation}.nii.gz`` (ids < 210 are training); BraTS21 ``BraTS2021_00000/
BraTS2021_00000_{t1,t1ce,t2,flair,seg}.nii.gz``. Each case lists its image files in channel order;
files are listed even when absent so that conversion can name the missing one. Each registry entry
names its finder (``DatasetSpec.layout``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mednext.data.errors import ConversionError

if TYPE_CHECKING:
    from mednext.data.registry import DatasetSpec

#: KiTS19 training cases: case_00000..case_00209 (210-299 are the unlabelled test set).
KITS19_TRAIN_CASES = 210
AMOS_CT_MAX_ID = 500
BRATS_MODALITY_SUFFIXES: tuple[str, ...] = ("t1", "t1ce", "t2", "flair")


@dataclass(frozen=True)
class RawCase:
    """One training case: nnU-Net case id, image files in channel order, label file."""

    case_id: str
    images: tuple[Path, ...]
    label: Path


def _dirs(root: Path, pattern: str) -> list[Path]:
    """Directories under ``root`` matching ``pattern``, skipping macOS resource-fork folders."""
    return sorted(p for p in root.glob(pattern) if p.is_dir() and "__MACOSX" not in p.parts)


def _one_dir(root: Path, patterns: tuple[str, ...], example: str) -> Path:
    for pattern in patterns:
        found = _dirs(root, pattern)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ConversionError(f"expected one {pattern} folder under {root}, found {len(found)}: {found[:3]}")
    raise ConversionError(f"no cases found under {root}: expected a layout like {example}")


def btcv_cases(root: Path) -> list[RawCase]:
    training = _one_dir(root, ("RawData/Training", "*/RawData/Training", "Training"), "RawData/Training/img/img0001.nii.gz")
    cases = []
    for image in sorted((training / "img").glob("img*.nii.gz")):
        digits = image.name[len("img"):-len(".nii.gz")]
        if digits.isdigit():
            cases.append(RawCase(f"BTCV_{int(digits):04d}", (image,), training / "label" / f"label{digits}.nii.gz"))
    return cases


def amos22_cases(root: Path) -> list[RawCase]:
    images_tr = _one_dir(root, ("amos22/imagesTr", "*/amos22/imagesTr", "imagesTr"), "amos22/imagesTr/amos_0001.nii.gz")
    cases = []
    for image in sorted(images_tr.glob("amos_*.nii.gz")):
        match = re.fullmatch(r"amos_(\d+)\.nii\.gz", image.name)
        if match and int(match.group(1)) < AMOS_CT_MAX_ID:
            cases.append(RawCase(image.name[: -len(".nii.gz")], (image,), images_tr.parent / "labelsTr" / image.name))
    return cases


def kits19_cases(root: Path) -> list[RawCase]:
    data = _one_dir(root, ("data", "*/data"), "data/case_00000/imaging.nii.gz")
    cases = []
    for folder in _dirs(data, "case_*"):
        match = re.fullmatch(r"case_(\d{5})", folder.name)
        if match and int(match.group(1)) < KITS19_TRAIN_CASES:
            cases.append(RawCase(folder.name, (folder / "imaging.nii.gz",), folder / "segmentation.nii.gz"))
    return cases


def brats21_cases(root: Path) -> list[RawCase]:
    folders = [p for p in _dirs(root, "**/BraTS2021_*") if re.fullmatch(r"BraTS2021_\d{5}", p.name)]
    if not folders:
        raise ConversionError(f"no cases found under {root}: expected a layout like BraTS2021_00000/BraTS2021_00000_t1.nii.gz")
    return [
        RawCase(f.name, tuple(f / f"{f.name}_{m}.nii.gz" for m in BRATS_MODALITY_SUFFIXES), f / f"{f.name}_seg.nii.gz")
        for f in folders
    ]


# Where each layout puts case ``index`` (the inverse of the finders above): stand-in cases for a
# rehearsal are written there, so that conversion reads them through the dataset's own finder.


def btcv_case_files(root: Path, index: int) -> RawCase:
    training = Path(root) / "RawData" / "Training"
    return RawCase(f"BTCV_{index + 1:04d}", (training / "img" / f"img{index + 1:04d}.nii.gz",),
                   training / "label" / f"label{index + 1:04d}.nii.gz")


def amos22_case_files(root: Path, index: int) -> RawCase:
    if index + 1 >= AMOS_CT_MAX_ID:
        raise ValueError(f"AMOS22 CT case ids are below {AMOS_CT_MAX_ID}; index {index} is not one")
    name = f"amos_{index + 1:04d}.nii.gz"
    folder = Path(root) / "amos22"
    return RawCase(name[: -len(".nii.gz")], (folder / "imagesTr" / name,), folder / "labelsTr" / name)


def kits19_case_files(root: Path, index: int) -> RawCase:
    folder = Path(root) / "data" / f"case_{index:05d}"
    return RawCase(folder.name, (folder / "imaging.nii.gz",), folder / "segmentation.nii.gz")


def brats21_case_files(root: Path, index: int) -> RawCase:
    folder = Path(root) / f"BraTS2021_{index:05d}"
    return RawCase(folder.name, tuple(folder / f"{folder.name}_{m}.nii.gz" for m in BRATS_MODALITY_SUFFIXES),
                   folder / f"{folder.name}_seg.nii.gz")


def find_cases(spec: DatasetSpec, source_root: Path) -> list[RawCase]:
    """Training cases of ``spec`` under ``source_root`` (its ``layout`` finder), sorted by case id."""
    if spec.layout is None:
        raise ConversionError(f"{spec.key}: no raw layout known (the registry entry has no layout finder)")
    cases = sorted(spec.layout(Path(source_root)), key=lambda c: c.case_id)
    if not cases:
        raise ConversionError(f"{spec.key}: no training cases found under {source_root}")
    return cases
