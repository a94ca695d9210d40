"""Per-case, per-class (or per-region) segmentation metrics: DSC, surface Dice, HD95, volumes.

Paper (§3, Tables 1-2) reports DSC and surface Dice (SDC/NSD) at 1.0 mm tolerance. The official
evaluation (MedNeXt ``evaluation/region_based_evaluation.py``; docs/sources.md#official-evaluation)
calls DeepMind's surface distances with spacing ``[1, 1, 1]``; ``spacing_mode="paper"`` reproduces
that, ``"physical"`` (default) uses the image spacing in mm.

Empty-mask conventions (region absent from ground truth and/or prediction):

* both empty: DSC, SDC and HD95 are NaN (the official code's NaN; NaN is left out of means);
* exactly one empty: DSC = 0, SDC = 0, HD95 = +inf (no surface to measure to). Summaries report
  means over finite values and count the NaN and inf entries separately.

Volumes are always voxel counts times the *physical* voxel volume, in both spacing modes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mednext.data.registry import DATASETS, get_dataset
from mednext.evaluation.bbox import Box, label_boxes, union_box
from mednext.evaluation.surface import DEFAULT_MAX_OFFSETS, robust_hausdorff, surface_dice, surface_pair_from_padded

Regions = Mapping[str, tuple[int, ...]]

#: Extra preset names: alias -> (dataset registry key, only the regions counted in the mean).
#: ``kits19-mednext`` is the official MedNeXt evaluation (kidney and tumor; docs/sources.md#official-evaluation).
PRESET_ALIASES: dict[str, tuple[str, bool]] = {"brats": ("brats21", False), "kits19-mednext": ("kits19", True)}

SPACING_MODES = ("physical", "paper")
METRICS = ("dsc", "sdc", "hd95", "gt_voxels", "pred_voxels", "gt_ml", "pred_ml")


def dataset_regions(name: str, *, in_mean_only: bool = False) -> dict[str, tuple[int, ...]]:
    """Evaluation regions of registry dataset ``name`` (``DatasetSpec.regions``), in registry order.

    Derived from the registry, never typed twice, so a region's name matches the one
    ``Region.in_mean`` is looked up by when the mean over classes is taken.
    """
    return {r.name: tuple(r.labels) for r in get_dataset(name).regions if r.in_mean or not in_mean_only}


def region_presets() -> dict[str, dict[str, tuple[int, ...]]]:
    """``--region-preset`` choices: every registry dataset key, plus :data:`PRESET_ALIASES`."""
    presets = {key: dataset_regions(key) for key in DATASETS}
    presets.update({alias: dataset_regions(key, in_mean_only=only) for alias, (key, only) in PRESET_ALIASES.items()})
    return presets


def label_regions(labels: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """One region per foreground label, named by its value (e.g. BTCV's 13 organs)."""
    return {str(int(label)): (int(label),) for label in labels if int(label) != 0}


def mode_spacing(mode: str, physical: Sequence[float]) -> tuple[float, ...]:
    """Spacing used for surface metrics: image spacing (``physical``) or all ones (``paper``)."""
    if mode == "physical":
        return tuple(float(s) for s in physical)
    if mode == "paper":
        return tuple(1.0 for _ in physical)
    raise ValueError(f"unknown spacing mode {mode!r}; expected one of {SPACING_MODES}")


@dataclass(frozen=True)
class RegionResult:
    """Metrics of one region of one case in one spacing mode."""

    region: str
    spacing_mode: str
    dsc: float
    sdc: float
    hd95: float
    gt_voxels: int
    pred_voxels: int
    gt_ml: float
    pred_ml: float

    def metric_items(self) -> list[tuple[str, float]]:
        """(metric name, value) pairs in :data:`METRICS` order."""
        return [(name, float(getattr(self, name))) for name in METRICS]


def _padded_mask(label_map: np.ndarray, box: Box, labels: tuple[int, ...]) -> np.ndarray:
    """Mask of ``labels`` inside ``box`` grown by one voxel, zero-padded where the volume ends."""
    shape = label_map.shape
    lo = [max(a - 1, 0) for a, _ in box]
    hi = [min(b + 1, s) for (_, b), s in zip(box, shape)]
    sub = label_map[tuple(slice(a, b) for a, b in zip(lo, hi))]
    if len(labels) == 1:
        mask = sub == labels[0]
    else:
        mask = np.isin(sub, labels)
    pads = [(1 - (a - low), 1 - (high - b)) for (a, b), low, high in zip(box, lo, hi)]
    if any(p for pair in pads for p in pair):
        mask = np.pad(mask, pads)
    return mask


def evaluate_label_maps(
    gt: np.ndarray,
    pred: np.ndarray,
    regions: Regions,
    physical_spacing: Sequence[float],
    spacing_modes: Sequence[str] = SPACING_MODES,
    tolerance_mm: float = 1.0,
    percent: float = 95.0,
    boxes: tuple[Mapping[int, Box], Mapping[int, Box]] | None = None,
) -> list[RegionResult]:
    """Metrics for every region and spacing mode of one case.

    ``gt`` and ``pred`` are integer label maps of equal shape in array (z, y, x) order and
    ``physical_spacing`` is in the same order. ``regions`` maps a name to the labels it unites.
    """
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth shape {gt.shape} differs from prediction shape {pred.shape}")
    if gt.ndim != 3 or len(physical_spacing) != 3:
        raise ValueError(f"expected 3D label maps and 3 spacings, got shape {gt.shape}, spacing {tuple(physical_spacing)}")
    voxel_ml = float(np.prod(np.asarray(physical_spacing, dtype=np.float64))) / 1000.0
    boxes_gt, boxes_pred = boxes if boxes is not None else (label_boxes(gt), label_boxes(pred))
    results: list[RegionResult] = []
    for name, labels in regions.items():
        labels = tuple(int(v) for v in labels)
        box = union_box([boxes[v] for boxes in (boxes_gt, boxes_pred) for v in labels if v in boxes])
        if box is None:
            for mode in spacing_modes:
                results.append(RegionResult(name, mode, np.nan, np.nan, np.nan, 0, 0, 0.0, 0.0))
            continue
        mask_gt = _padded_mask(gt, box, labels)
        mask_pred = _padded_mask(pred, box, labels)
        n_gt, n_pred = int(np.count_nonzero(mask_gt)), int(np.count_nonzero(mask_pred))
        n_both = int(np.count_nonzero(mask_gt & mask_pred))
        dsc = 2.0 * n_both / (n_gt + n_pred) if n_gt + n_pred else np.nan
        for mode in spacing_modes:
            if n_gt == 0 and n_pred == 0:
                sdc, hd95 = np.nan, np.nan
            elif n_gt == 0 or n_pred == 0:
                sdc, hd95 = 0.0, np.inf
            else:
                pair = surface_pair_from_padded(
                    mask_gt, mask_pred, mode_spacing(mode, physical_spacing), tolerance_mm,
                    need="percentile", max_offsets=DEFAULT_MAX_OFFSETS, percent=percent,
                )
                sdc = surface_dice(pair.gt_to_pred, pair.pred_to_gt, tolerance_mm)
                hd95 = robust_hausdorff(pair.gt_to_pred, pair.pred_to_gt, percent)
            results.append(RegionResult(name, mode, dsc, sdc, hd95, n_gt, n_pred, n_gt * voxel_ml, n_pred * voxel_ml))
    return results
