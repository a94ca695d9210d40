"""Synthetic label maps (ellipsoid "organs") for tests and the metric benchmark.

Fixtures are generated, never downloaded (project rules); these phantoms stand in for
BTCV-like multi-organ CT label maps of the size the paper evaluates (512x512 in-plane, 13 organs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _paint_ellipsoid(
    labels: np.ndarray, value: int, centre: Sequence[float], radii: Sequence[float]
) -> None:
    """Set ``labels`` to ``value`` inside one axis-aligned ellipsoid (in voxel units), in place."""
    lo = [max(int(np.floor(c - r)), 0) for c, r in zip(centre, radii)]
    hi = [min(int(np.ceil(c + r)) + 1, s) for c, r, s in zip(centre, radii, labels.shape)]
    if any(high <= low for low, high in zip(lo, hi)):
        return
    grids = np.ogrid[tuple(slice(low, high) for low, high in zip(lo, hi))]
    inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii)) <= 1.0
    view = labels[tuple(slice(low, high) for low, high in zip(lo, hi))]
    view[inside] = value


def ellipsoid_phantom(
    shape: Sequence[int], n_classes: int, rng: np.random.Generator, fill: float = 0.18
) -> tuple[np.ndarray, list[tuple[list[float], list[float]]]]:
    """Label map with one ellipsoid per class ``1..n_classes`` (later classes paint over earlier).

    Returns the ``uint8`` label map and the ``(centre, radii)`` of each class, in voxels.
    ``fill`` scales the largest radius relative to each axis length.
    """
    shape = tuple(int(s) for s in shape)
    labels = np.zeros(shape, dtype=np.uint8)
    params: list[tuple[list[float], list[float]]] = []
    for value in range(1, n_classes + 1):
        radii = [max(1.5, s * fill * rng.uniform(0.25, 1.0)) for s in shape]
        centre = [rng.uniform(0.15 * s, 0.85 * s) for s in shape]
        _paint_ellipsoid(labels, value, centre, radii)
        params.append((centre, radii))
    return labels, params


def perturbed_prediction(
    shape: Sequence[int],
    params: Sequence[tuple[Sequence[float], Sequence[float]]],
    rng: np.random.Generator,
    shift: float = 2.0,
    scale: float = 0.1,
) -> np.ndarray:
    """A "prediction" for :func:`ellipsoid_phantom`: each ellipsoid moved by up to ``shift`` voxels
    per axis and its radii scaled by up to ``1 +/- scale``."""
    labels = np.zeros(tuple(int(s) for s in shape), dtype=np.uint8)
    for value, (centre, radii) in enumerate(params, start=1):
        new_centre = [c + rng.uniform(-shift, shift) for c in centre]
        new_radii = [max(1.0, r * rng.uniform(1 - scale, 1 + scale)) for r in radii]
        _paint_ellipsoid(labels, value, new_centre, new_radii)
    return labels
