"""Reading ground-truth and predicted label maps (NIfTI via SimpleITK, nnU-Net's output format)
and checking that a prediction matches its ground truth.

Arrays are in SimpleITK order (z, y, x); spacings are reversed from SimpleITK's (x, y, z) to match.
Every problem raises :class:`EvaluationInputError` naming the file and what was wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mednext.evaluation.bbox import Box, label_boxes

#: Allowed absolute difference between prediction and ground-truth spacing, in mm.
DEFAULT_SPACING_TOLERANCE_MM = 1e-3


class EvaluationInputError(ValueError):
    """A ground-truth or prediction file is unreadable or does not match what is expected."""


@dataclass
class LabelImage:
    """One label map: integer array (z, y, x), spacing in mm (z, y, x), source path, label boxes."""

    path: Path
    array: np.ndarray
    spacing: tuple[float, float, float]
    boxes: dict[int, Box]

    @property
    def labels(self) -> set[int]:
        """Label values present in the map (background included)."""
        return set(self.boxes)


def read_label_image(path: str | Path) -> LabelImage:
    """Read a 3D label map; non-integer values or an unreadable file raise EvaluationInputError."""
    import SimpleITK as sitk

    path = Path(path)
    if not path.is_file():
        raise EvaluationInputError(f"{path}: file not found")
    try:
        image = sitk.ReadImage(str(path))
        array = sitk.GetArrayFromImage(image)
    except Exception as error:  # SimpleITK raises RuntimeError with a long ITK message
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EvaluationInputError(f"{path}: cannot be read as an image ({first_line})") from error
    if array.ndim != 3:
        raise EvaluationInputError(f"{path}: expected a 3D label map, found {array.ndim}D with shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise EvaluationInputError(f"{path}: expected integer label values, found non-integer values (dtype {array.dtype})")
        array = array.astype(np.int64)
    if array.size and int(array.min()) < 0:
        raise EvaluationInputError(f"{path}: expected non-negative labels, found {int(array.min())}")
    if array.size and int(array.max()) <= 255 and array.dtype != np.uint8:
        array = array.astype(np.uint8)
    spacing = tuple(float(s) for s in reversed(image.GetSpacing()))
    return LabelImage(path, array, spacing, label_boxes(array))  # type: ignore[arg-type]


def check_labels(image: LabelImage, allowed: Iterable[int]) -> None:
    """Raise if ``image`` holds a label value outside ``allowed``."""
    unexpected = sorted(image.labels - {int(v) for v in allowed})
    if unexpected:
        raise EvaluationInputError(
            f"{image.path}: label values {unexpected} are not among the dataset's labels {sorted(set(int(v) for v in allowed))}"
        )


def check_prediction(
    gt: LabelImage,
    pred: LabelImage,
    allowed_labels: Iterable[int],
    spacing_tolerance_mm: float = DEFAULT_SPACING_TOLERANCE_MM,
) -> None:
    """Raise EvaluationInputError naming ``pred`` when its shape, spacing or labels do not match."""
    if pred.array.shape != gt.array.shape:
        raise EvaluationInputError(
            f"{pred.path}: shape {pred.array.shape} (z, y, x) differs from ground truth {gt.path.name} shape {gt.array.shape}"
        )
    difference = max(abs(a - b) for a, b in zip(pred.spacing, gt.spacing))
    if difference > spacing_tolerance_mm:
        raise EvaluationInputError(
            f"{pred.path}: spacing {pred.spacing} mm (z, y, x) differs from ground truth {gt.path.name} spacing "
            f"{gt.spacing} by {difference:.4g} mm (tolerance {spacing_tolerance_mm} mm)"
        )
    allowed = list(allowed_labels)
    check_labels(gt, allowed)
    check_labels(pred, allowed)
