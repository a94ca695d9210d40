"""Our surface metrics equal DeepMind surface-distance (the package the paper used) to 1e-6."""

from __future__ import annotations

import numpy as np
import pytest
from evaluation_cases import mask_pair, non_empty_cases
from scipy import ndimage
from surface_distance import lookup_tables
from surface_distance import metrics as sd

from mednext.evaluation.metrics import evaluate_label_maps
from mednext.evaluation.surface import compute_surface_distances, neighbour_codes

TOL = 1e-6


def _reference(gt: np.ndarray, pred: np.ndarray, spacing, tolerance: float) -> tuple[float, float, float]:
    distances = sd.compute_surface_distances(gt, pred, list(spacing))
    return (
        float(sd.compute_dice_coefficient(gt, pred)),
        float(sd.compute_surface_dice_at_tolerance(distances, tolerance)),
        float(sd.compute_robust_hausdorff(distances, 95)),
    )


def _ours(gt: np.ndarray, pred: np.ndarray, spacing, tolerance: float, mode: str = "physical") -> tuple[float, float, float]:
    (result,) = evaluate_label_maps(gt.astype(np.uint8), pred.astype(np.uint8), {"c": (1,)}, spacing, (mode,), tolerance)
    return result.dsc, result.sdc, result.hd95


def test_metrics_equal_surface_distance_on_240_cases() -> None:
    cases = non_empty_cases(seed=11, n=240)
    tolerances = (0.5, 1.0, 2.0, 3.0)
    kinds = {kind for *_, kind in cases}
    assert len(kinds) == 6 and sum(len(set(case[2])) > 1 for case in cases) > 100  # anisotropic majority
    for index, (gt, pred, spacing, kind) in enumerate(cases):
        tolerance = tolerances[index % len(tolerances)]
        expected = _reference(gt, pred, spacing, tolerance)
        got = _ours(gt, pred, spacing, tolerance)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOL, err_msg=f"case {index} ({kind}, spacing {spacing})")


def test_paper_mode_equals_surface_distance_with_unit_spacing() -> None:
    for index, (gt, pred, spacing, kind) in enumerate(non_empty_cases(seed=12, n=60)):
        expected = _reference(gt, pred, (1.0, 1.0, 1.0), 1.0)
        got = _ours(gt, pred, spacing, 1.0, mode="paper")
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOL, err_msg=f"case {index} ({kind})")


def test_distance_lists_equal_surface_distance() -> None:
    """The full sorted (distance, area) lists, not just the metrics, agree."""
    for index, (gt, pred, spacing, kind) in enumerate(non_empty_cases(seed=13, n=60)):
        expected = sd.compute_surface_distances(gt, pred, list(spacing))
        got = compute_surface_distances(gt, pred, spacing)
        for key, value in expected.items():
            assert got[key].shape == value.shape, (index, kind, key)
            np.testing.assert_allclose(got[key], value, rtol=0, atol=TOL, err_msg=f"case {index} ({kind}) {key}")


def test_neighbour_codes_equal_reference_correlation() -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((7, 9, 11)) < 0.5
    padded = np.pad(mask, 1)
    # DeepMind's construction: crop with zero padding at the high end, correlate with its kernel
    cropmask = np.zeros(np.array(mask.shape) + 1, np.uint8)
    cropmask[:-1, :-1, :-1] = mask
    expected = ndimage.correlate(cropmask, lookup_tables.ENCODE_NEIGHBOURHOOD_3D_KERNEL, mode="constant", cval=0)
    np.testing.assert_array_equal(neighbour_codes(padded), expected)


def test_big_tolerance_and_far_surfaces() -> None:
    """Distances beyond the offset search radius (k-d tree path) and a tolerance above it."""
    gt = np.zeros((20, 60, 60), bool)
    pred = np.zeros_like(gt)
    gt[2:5, 2:8, 2:8] = True
    pred[15:19, 50:58, 45:59] = True
    pred[3:5, 3:6, 3:7] = True
    for spacing in ((1.0, 1.0, 1.0), (3.0, 0.7, 0.7)):
        for tolerance in (1.0, 25.0):
            np.testing.assert_allclose(_ours(gt, pred, spacing, tolerance), _reference(gt, pred, spacing, tolerance), atol=TOL)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 0.8, 0.8)])
def test_regions_equal_reference_on_union_masks(spacing) -> None:
    """BraTS regions (WT=1,2,3; TC=2,3; ET=3) equal the reference on the union masks."""
    rng = np.random.default_rng(5)
    gt = rng.integers(0, 4, (18, 20, 22)).astype(np.uint8)
    gt = ndimage.median_filter(gt, size=3)
    pred = ndimage.median_filter(rng.integers(0, 4, gt.shape).astype(np.uint8), size=3)
    regions = {"WT": (1, 2, 3), "TC": (2, 3), "ET": (3,)}
    results = {r.region: r for r in evaluate_label_maps(gt, pred, regions, spacing, ("physical",), 1.0)}
    for name, labels in regions.items():
        expected = _reference(np.isin(gt, labels), np.isin(pred, labels), spacing, 1.0)
        got = (results[name].dsc, results[name].sdc, results[name].hd95)
        np.testing.assert_allclose(got, expected, atol=TOL, err_msg=name)
        assert results[name].gt_voxels == int(np.isin(gt, labels).sum())
        assert results[name].gt_ml == pytest.approx(np.isin(gt, labels).sum() * np.prod(spacing) / 1000)


def test_dice_equals_monai() -> None:
    """DSC against an independent implementation (MONAI's compute_dice on one-hot tensors)."""
    torch = pytest.importorskip("torch")
    from monai.metrics import compute_dice

    rng = np.random.default_rng(8)
    for _ in range(20):
        gt, pred = mask_pair(rng, "blobs")
        if not gt.any() and not pred.any():
            continue
        ours = _ours(gt, pred, (1.0, 1.0, 1.0), 1.0)[0]
        to_tensor = lambda m: torch.from_numpy(np.stack([~m, m])[None].astype(np.float32))  # noqa: E731
        monai_dice = float(compute_dice(to_tensor(pred), to_tensor(gt), include_background=False)[0, 0])
        assert ours == pytest.approx(monai_dice, abs=1e-6)
