"""Case geometry of a dataset: the shapes and spacings its images come in, for real-size rehearsals.

Each registry entry (:mod:`mednext.data.registry`) owns a :class:`GeometryProfile`: its smallest,
median and largest training case by voxel count at the planned spacing (the paper plans 1 mm
isotropic, §3.1), the ranges of slice count and spacing, and the public source of the figures.
Cost and memory of conversion, nnU-Net preprocessing and evaluation grow with these sizes, so a
rehearsal writes stand-in cases at exactly these geometries (:mod:`mednext.data.standins`) when the
real data is not on disk. Shapes and spacings are (z, y, x): slice axis first, as numpy reads a
NIfTI through SimpleITK and as nnU-Net's fingerprint lists them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

Shape3 = tuple[int, int, int]
Spacing3 = tuple[float, float, float]
#: The paper's planned spacing (§3.1: "resampled to 1mm isotropic").
PLANNED_SPACING_MM: Spacing3 = (1.0, 1.0, 1.0)


def _triple(values: Sequence[float], what: str, cast: type) -> tuple:
    if len(values) != 3 or any(float(v) <= 0 for v in values):
        raise ValueError(f"{what} must be 3 positive values (z, y, x), found {list(values)}")
    return tuple(cast(v) for v in values)


@dataclass(frozen=True)
class CaseGeometry:
    """One case's grid: ``shape`` in voxels and ``spacing`` in mm, both (z, y, x); ``name`` says which
    case it is (a real case id, or how the figure was obtained)."""

    shape: Shape3
    spacing: Spacing3
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", _triple(self.shape, "shape", int))
        object.__setattr__(self, "spacing", _triple(self.spacing, "spacing", float))

    @property
    def voxels(self) -> int:
        """Voxels as stored (what reading and converting the file costs)."""
        return math.prod(self.shape)

    @property
    def extent_mm(self) -> tuple[float, float, float]:
        """Field of view in mm (z, y, x)."""
        return tuple(n * s for n, s in zip(self.shape, self.spacing))  # type: ignore[return-value]

    def shape_at(self, spacing: Sequence[float] = PLANNED_SPACING_MM) -> Shape3:
        """The shape after resampling to ``spacing`` (nnU-Net rounds the scaled shape per axis)."""
        return tuple(max(1, int(round(e / float(s)))) for e, s in zip(self.extent_mm, spacing))  # type: ignore[return-value]

    def voxels_at(self, spacing: Sequence[float] = PLANNED_SPACING_MM) -> int:
        """Voxels after resampling to ``spacing`` (what preprocessing and training cost)."""
        return math.prod(self.shape_at(spacing))


def _interpolate(low: CaseGeometry, high: CaseGeometry, t: float, name: str) -> CaseGeometry:
    """A geometry between ``low`` and ``high``: extent and spacing interpolated log-linearly per axis."""
    spacing = tuple(a ** (1 - t) * b ** t for a, b in zip(low.spacing, high.spacing))
    extent = tuple(a ** (1 - t) * b ** t for a, b in zip(low.extent_mm, high.extent_mm))
    return CaseGeometry(tuple(max(1, round(e / s)) for e, s in zip(extent, spacing)), spacing, name)


@dataclass(frozen=True)
class GeometryProfile:
    """The geometry of a dataset's training cases, with the public source of its figures.

    ``smallest``, ``median`` and ``largest`` are cases ranked by voxel count at the planned spacing;
    ``slices``, ``inplane_spacing_mm`` and ``slice_spacing_mm`` are the ranges over all training
    cases (what the source states). ``assumed`` lists figures no public source gave, and why the
    value chosen is plausible; a rehearsal on the real data replaces them.
    """

    smallest: CaseGeometry
    median: CaseGeometry
    largest: CaseGeometry
    slices: tuple[int, int]
    inplane_spacing_mm: tuple[float, float]
    slice_spacing_mm: tuple[float, float]
    source: str
    assumed: str = ""

    def __post_init__(self) -> None:
        sizes = [g.voxels_at() for g in (self.smallest, self.median, self.largest)]
        if sizes != sorted(sizes):
            raise ValueError(f"smallest/median/largest must grow in voxels at 1 mm, found {sizes}")

    def cases(self, k: int = 3, spacing: Sequence[float] = PLANNED_SPACING_MM) -> list[CaseGeometry]:
        """``k`` representative cases, smallest first by voxels at ``spacing``.

        1: the median; 2: smallest and largest; 3: smallest, median and largest; more: those three
        plus geometries interpolated between them at evenly spaced ranks (0 = smallest, 0.5 = median,
        1 = largest).
        """
        if k < 1:
            raise ValueError(f"need at least one case, asked for {k}")
        anchors = {0.0: self.smallest, 0.5: self.median, 1.0: self.largest}
        if k == 1:
            ranks = [0.5]
        elif k == 2:
            ranks = [0.0, 1.0]
        else:
            ranks = sorted({0.0, 0.5, 1.0} | {i / (k - 1) for i in range(k)})
            while len(ranks) > k:  # an odd k already hits 0.5; drop the rank nearest the median
                ranks.remove(min((r for r in ranks if r not in anchors), key=lambda r: abs(r - 0.5)))
        chosen = []
        for rank in ranks:
            if rank in anchors:
                chosen.append(anchors[rank])
                continue
            low, high, t = ((self.smallest, self.median, rank / 0.5) if rank < 0.5
                            else (self.median, self.largest, (rank - 0.5) / 0.5))
            chosen.append(_interpolate(low, high, t, f"interpolated at rank {rank:.2f}"))
        return sorted(chosen, key=lambda g: g.voxels_at(spacing))


def uniform_profile(geometry: CaseGeometry, source: str) -> GeometryProfile:
    """A profile whose cases all share one grid (e.g. BraTS: every case 240 x 240 x 155 at 1 mm)."""
    z, y, x = geometry.shape
    return GeometryProfile(
        smallest=replace(geometry, name=geometry.name or "every case"), median=geometry, largest=geometry,
        slices=(z, z), inplane_spacing_mm=(geometry.spacing[1], geometry.spacing[1]),
        slice_spacing_mm=(geometry.spacing[0], geometry.spacing[0]), source=source,
    )


def rank_by_planned_voxels(geometries: Sequence[tuple[str, CaseGeometry]], k: int,
                           spacing: Sequence[float] = PLANNED_SPACING_MM) -> list[tuple[str, CaseGeometry]]:
    """``k`` of ``(case id, geometry)`` pairs: smallest, median and largest by voxels at ``spacing``
    (k = 3), the median alone (k = 1), or ``k`` at evenly spaced ranks; smallest first."""
    if not geometries:
        raise ValueError("no cases to choose from")
    ordered = sorted(geometries, key=lambda item: (item[1].voxels_at(spacing), item[0]))
    n = len(ordered)
    if k >= n:
        return ordered
    if k == 1:
        return [ordered[(n - 1) // 2]]
    picks = sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})
    if k >= 3 and (n - 1) // 2 not in picks:  # the median case is always one of them
        picks[len(picks) // 2] = (n - 1) // 2
    return [ordered[i] for i in sorted(set(picks))]
