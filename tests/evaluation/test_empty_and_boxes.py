"""Empty-mask conventions, label bounding boxes and the offset table."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from mednext.evaluation.bbox import label_boxes, union_box
from mednext.evaluation.metrics import evaluate_label_maps, mode_spacing
from mednext.evaluation.surface import compute_surface_distances, offset_table


def _one(gt: np.ndarray, pred: np.ndarray):
    regions = {"a": (1,), "b": (2,)}
    return {r.region: r for r in evaluate_label_maps(gt, pred, regions, (2.0, 1.0, 1.0), ("physical", "paper"))}


def test_both_empty_gives_nan_and_zero_volumes() -> None:
    gt = np.zeros((8, 9, 10), np.uint8)
    gt[2:5, 2:5, 2:5] = 1
    results = [r for r in evaluate_label_maps(gt, gt.copy(), {"a": (1,), "b": (2,)}, (2.0, 1.0, 1.0), ("physical", "paper"))]
    assert len(results) == 4
    for r in results:
        if r.region == "b":
            assert math.isnan(r.dsc) and math.isnan(r.sdc) and math.isnan(r.hd95)
            assert (r.gt_voxels, r.pred_voxels, r.gt_ml, r.pred_ml) == (0, 0, 0.0, 0.0)
        else:
            assert (r.dsc, r.sdc, r.hd95) == (1.0, 1.0, 0.0)
            assert r.gt_voxels == 27 and r.gt_ml == pytest.approx(27 * 2.0 / 1000)


@pytest.mark.parametrize("empty_side", ["gt", "pred"])
def test_one_empty_gives_zero_and_inf(empty_side: str) -> None:
    full = np.zeros((8, 9, 10), np.uint8)
    full[1:4, 1:6, 2:7] = 2
    empty = np.zeros_like(full)
    gt, pred = (empty, full) if empty_side == "gt" else (full, empty)
    for mode in ("physical", "paper"):
        (r,) = [x for x in evaluate_label_maps(gt, pred, {"b": (2,)}, (2.0, 1.0, 1.0), (mode,))]
        assert (r.dsc, r.sdc) == (0.0, 0.0) and r.hd95 == math.inf
        assert r.gt_voxels + r.pred_voxels == 3 * 5 * 5


def test_drop_in_function_handles_empty_masks_like_the_documented_reference() -> None:
    """surface-distance 0.1 crashes here under NumPy 2 (np.Inf); its documented result is inf
    distances for the non-empty side and empty lists for the empty one."""
    mask = np.zeros((6, 6, 6), bool)
    mask[2:4, 2:4, 2:4] = True
    out = compute_surface_distances(mask, np.zeros_like(mask), (1.0, 1.0, 1.0))
    assert out["distances_pred_to_gt"].size == 0 and out["surfel_areas_pred"].size == 0
    assert out["distances_gt_to_pred"].size > 0 and np.all(np.isinf(out["distances_gt_to_pred"]))
    both = compute_surface_distances(np.zeros_like(mask), np.zeros_like(mask), (1.0, 1.0, 1.0))
    assert all(v.size == 0 for v in both.values())


def test_label_boxes_equal_find_objects() -> None:
    rng = np.random.default_rng(0)
    for high in (5, 12, 40, 70, 300):  # uint8/uint16/uint64 bit paths and the find_objects fallback
        labels = rng.integers(0, high + 1, (9, 13, 17))
        labels[labels % 3 == 0] = 0
        boxes = label_boxes(labels.astype(np.uint16 if high > 255 else np.uint8))
        present = set(np.unique(labels).tolist())
        assert set(boxes) == present
        reference = ndimage.find_objects(labels + 1)
        for value in present:
            assert boxes[value] == tuple((s.start, s.stop) for s in reference[value]), (high, value)


def test_union_box() -> None:
    assert union_box([((1, 3), (2, 4)), ((0, 2), (3, 9))]) == ((0, 3), (2, 9))
    assert union_box([]) is None


def test_offset_table_is_complete_and_sorted() -> None:
    spacing = (3.0, 0.75, 0.75)
    table = offset_table(spacing, 300, 1.0)
    assert np.all(np.diff(table.distances) >= 0)
    # every integer offset within the radius is present exactly once
    r = table.reach
    grid = np.stack(np.meshgrid(*[np.arange(-x, x + 1) for x in r], indexing="ij"), -1).reshape(-1, 3)
    lengths = np.sqrt(((grid * np.array(spacing)) ** 2).sum(1))
    assert int((lengths <= table.radius).sum()) == table.offsets.shape[0]
    assert len({tuple(o) for o in table.offsets.tolist()}) == table.offsets.shape[0]


def test_mode_spacing() -> None:
    assert mode_spacing("physical", (3, 0.5, 0.5)) == (3.0, 0.5, 0.5)
    assert mode_spacing("paper", (3, 0.5, 0.5)) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="unknown spacing mode"):
        mode_spacing("voxel", (1, 1, 1))
