"""Benchmark: this project's metrics vs DeepMind ``surface-distance`` on a 512x512x150, 13-class case.

Prints both times from the same run, their ratio, and the largest difference between the two
sets of values (surface Dice at 1 mm, HD95, DSC). Target: >= 10x faster than the package, with
equal values. Both sides start from the two label maps; the reference side builds the boolean
masks per class (as MedNeXt's official evaluation does) and calls the package.

Usage: ``python benchmarks/bench_metrics.py [--perturbation mild|strong] [--seed N] [--repeats N]``
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def reference_metrics(gt: np.ndarray, pred: np.ndarray, n_classes: int, spacing: tuple[float, ...],
                      tol: float) -> dict[int, tuple[float, float, float]]:
    """DSC, SDC and HD95 per class with DeepMind's package (all classes here are non-empty)."""
    from surface_distance import metrics as sd

    out = {}
    for value in range(1, n_classes + 1):
        mask_gt, mask_pred = gt == value, pred == value
        distances = sd.compute_surface_distances(mask_gt, mask_pred, list(spacing))
        out[value] = (
            float(sd.compute_dice_coefficient(mask_gt, mask_pred)),
            float(sd.compute_surface_dice_at_tolerance(distances, tol)),
            float(sd.compute_robust_hausdorff(distances, 95)),
        )
    return out


def project_metrics(gt: np.ndarray, pred: np.ndarray, n_classes: int, spacing: tuple[float, ...],
                    tol: float) -> dict[int, tuple[float, float, float]]:
    """The same values from :func:`mednext.evaluation.metrics.evaluate_label_maps`."""
    from mednext.evaluation.metrics import evaluate_label_maps, label_regions

    results = evaluate_label_maps(gt, pred, label_regions(range(1, n_classes + 1)), spacing, ("physical",), tol)
    return {int(r.region): (r.dsc, r.sdc, r.hd95) for r in results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--perturbation", choices=("mild", "strong"), default="mild",
                        help="mild: shift <=1 voxel, radii +-5%%; strong: shift <=2 voxels, radii +-10%%")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3,
                        help="best-of-N timing for both sides (the first call is also printed: it pays one-off set-up)")
    parser.add_argument("--spacing", type=float, nargs=3, default=(3.0, 0.78, 0.78), help="z y x spacing in mm")
    args = parser.parse_args()
    from mednext.evaluation.phantoms import ellipsoid_phantom, perturbed_prediction

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    shape, n_classes, tol = (150, 512, 512), 13, 1.0
    spacing = tuple(args.spacing)
    shift, scale = (1.0, 0.05) if args.perturbation == "mild" else (2.0, 0.10)
    rng = np.random.default_rng(args.seed)
    gt, params = ellipsoid_phantom(shape, n_classes, rng)
    pred = perturbed_prediction(shape, params, rng, shift=shift, scale=scale)
    print(f"volume {shape} (z, y, x), {n_classes} classes, spacing {spacing} mm, tolerance {tol} mm, "
          f"perturbation {args.perturbation}")

    def timed(fn):
        """(first call, best of ``--repeats`` calls, values) in seconds."""
        times, value = [], None
        for _ in range(max(1, args.repeats)):
            start = time.perf_counter()
            value = fn(gt, pred, n_classes, spacing, tol)
            times.append(time.perf_counter() - start)
        return times[0], min(times), value

    first_project, t_project, ours = timed(project_metrics)
    first_reference, t_reference, ref = timed(reference_metrics)
    diffs = np.array([[abs(a - b) for a, b in zip(ours[c], ref[c])] for c in ref])
    print("class   DSC      SDC@1mm  HD95(mm)")
    for c in sorted(ref):
        print(f"{c:5d}  {ours[c][0]:.5f}  {ours[c][1]:.5f}  {ours[c][2]:8.3f}")
    print(f"max |difference| vs surface-distance: DSC {diffs[:, 0].max():.3g}, SDC {diffs[:, 1].max():.3g}, "
          f"HD95 {diffs[:, 2].max():.3g}")
    print(f"first call:      this project {first_project:.3f} s   surface-distance {first_reference:.3f} s   "
          f"speed-up {first_reference / first_project:.1f}x")
    print(f"best of {max(1, args.repeats)}:       this project {t_project:.3f} s   surface-distance {t_reference:.3f} s   "
          f"speed-up {t_reference / t_project:.1f}x")
    if diffs.max() > 1e-6:
        raise SystemExit("values differ by more than 1e-6")


if __name__ == "__main__":
    main()
