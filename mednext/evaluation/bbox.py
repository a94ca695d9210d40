"""Bounding boxes of every label of a label map in one pass (instead of one full scan per class).

Each voxel's label becomes one bit (``1 << label``); OR-reductions along the axes then give, for
every label at once, which slices/rows/columns contain it. Labels 0..63 use this path; larger
labels fall back to ``scipy.ndimage.find_objects``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

Box = tuple[tuple[int, int], ...]  # per axis (start, stop), stop exclusive


def _bit_dtype(max_label: int) -> type[np.unsignedinteger] | None:
    for dtype, bits in ((np.uint8, 8), (np.uint16, 16), (np.uint32, 32), (np.uint64, 64)):
        if max_label < bits:
            return dtype
    return None


def _profiles(bits: np.ndarray) -> list[np.ndarray]:
    """OR of ``bits`` over all axes but one, for each axis."""
    if bits.ndim == 1:
        return [bits]
    first = np.bitwise_or.reduce(bits.reshape(bits.shape[0], -1), axis=1)
    rest = _profiles(np.bitwise_or.reduce(bits, axis=0))
    return [first, *rest]


def label_boxes(label_map: np.ndarray) -> dict[int, Box]:
    """Bounding box of every label value present in ``label_map`` (non-negative integers),
    background 0 included."""
    if label_map.size == 0:
        return {}
    if not np.issubdtype(label_map.dtype, np.integer):
        raise TypeError(f"label map must hold integers, got dtype {label_map.dtype}")
    low, high = int(label_map.min()), int(label_map.max())
    if low < 0:
        raise ValueError(f"label map holds a negative label ({low})")
    dtype = _bit_dtype(high)
    if dtype is None:
        return _boxes_find_objects(label_map, high)
    labels = label_map if label_map.dtype.itemsize <= np.dtype(dtype).itemsize else label_map.astype(dtype)
    bits = np.left_shift(dtype(1), labels, dtype=dtype)
    profiles = _profiles(bits)
    present = np.bitwise_or.reduce(profiles[0])
    boxes: dict[int, Box] = {}
    for label in range(high + 1):
        flag = dtype(1) << dtype(label)
        if not present & flag:
            continue
        box = []
        for profile in profiles:
            idx = np.flatnonzero(profile & flag)
            box.append((int(idx[0]), int(idx[-1]) + 1))
        boxes[label] = tuple(box)
    return boxes


def _boxes_find_objects(label_map: np.ndarray, high: int) -> dict[int, Box]:
    boxes: dict[int, Box] = {}
    shifted = label_map.astype(np.int64) + 1  # find_objects ignores 0; shift so background counts
    for index, slices in enumerate(ndimage.find_objects(shifted, max_label=high + 1)):
        if slices is not None:
            boxes[index] = tuple((int(s.start), int(s.stop)) for s in slices)
    return boxes


def union_box(boxes: list[Box]) -> Box | None:
    """Smallest box containing every box in ``boxes`` (None when the list is empty)."""
    if not boxes:
        return None
    ndim = len(boxes[0])
    return tuple((min(b[a][0] for b in boxes), max(b[a][1] for b in boxes)) for a in range(ndim))
