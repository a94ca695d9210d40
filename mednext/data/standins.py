"""Stand-in cases at a dataset's real geometry, written in the dataset's own source layout.

A rehearsal (``mednext-repro rehearse``) measures conversion, preprocessing and evaluation on cases
of real size. Where the real data is not on disk it writes stand-ins: one file per channel and a
label map at the shape and spacing of a :class:`~mednext.data.geometry.CaseGeometry`, placed where
the dataset's source layout keeps a case (``DatasetSpec.case_files``), so that conversion reads
them through the dataset's own finder. What costs time and memory is real: the grid, the channel
count, the number of label values (source values, before the BraTS remap), int16 intensities with
noise (which sets the compressed size), air around a CT body and zeros around a skull-stripped MRI
head (which sets nnU-Net's crop to the non-zero region). The anatomy is not: every label is an
ellipsoid inside the body. Volumes are built in slabs of slices, so writing a 700-slice CT needs
little more memory than the file's own array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mednext.data.geometry import CaseGeometry
from mednext.data.layouts import RawCase
from mednext.data.registry import DatasetSpec

_SLAB = 32  # slices built at once
_CT_AIR_HU, _CT_BODY_HU, _CT_NOISE_HU = -1024, 40, 12
_MRI_NOISE = 20


@dataclass(frozen=True)
class _Blob:
    """One labelled ellipsoid: centre and radii in mm (z, y, x) from the volume's centre, and its label."""

    label: int
    centre: np.ndarray
    radii: np.ndarray


def _blobs(rng: np.random.Generator, labels: Sequence[int], half: np.ndarray) -> list[_Blob]:
    """One ellipsoid per label value inside the body half-axes ``half`` (mm), organ-sized."""
    blobs = []
    for label in labels:
        radii = np.array([min(half[0] * 0.5, rng.uniform(20, 60)), *(half[1:] * rng.uniform(0.08, 0.18, 2))])
        centre = rng.uniform(-0.55, 0.55, 3) * (half - radii)
        blobs.append(_Blob(int(label), centre, radii))
    return blobs


def _axis_mm(n: int, spacing: float) -> np.ndarray:
    return (np.arange(n) + 0.5) * spacing - n * spacing / 2.0


def synthesize(geometry: CaseGeometry, spec: DatasetSpec, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The channels (int16, z/y/x) and the label map (uint8, source label values) of one stand-in."""
    rng = np.random.default_rng(seed)
    shape, spacing = geometry.shape, np.asarray(geometry.spacing)
    extent = np.asarray(geometry.extent_mm)
    ct = spec.modality.upper() == "CT"
    # CT: an elliptic body cylinder along z in air; MRI: a skull-stripped head (zeros around it).
    half = extent / 2.0 * (np.array([1.0, 0.88, 0.94]) if ct else np.array([0.9, 0.8, 0.75]))
    foreground = [v for v in spec.source_label_values if v != 0]
    blobs = _blobs(rng, foreground, half)
    base = rng.uniform(300, 700, len(spec.channel_names)) if not ct else np.array([_CT_BODY_HU])
    uptake = {b.label: rng.uniform(40, 160) for b in blobs}
    y, x = _axis_mm(shape[1], spacing[1]), _axis_mm(shape[2], spacing[2])
    in_plane = (y[:, None] / half[1]) ** 2 + (x[None, :] / half[2]) ** 2
    label = np.zeros(shape, dtype=np.uint8)
    channels = [np.empty(shape, dtype=np.int16) for _ in spec.channel_names]
    z_all = _axis_mm(shape[0], spacing[0])
    for z0 in range(0, shape[0], _SLAB):
        z = z_all[z0:z0 + _SLAB]
        body = in_plane[None] <= 1.0 if ct else in_plane[None] + (z[:, None, None] / half[0]) ** 2 <= 1.0
        body = np.broadcast_to(body, (len(z), *shape[1:]))
        slab = label[z0:z0 + _SLAB]
        for blob in blobs:
            inside = ((z[:, None, None] - blob.centre[0]) / blob.radii[0]) ** 2 + \
                     ((y[None, :, None] - blob.centre[1]) / blob.radii[1]) ** 2 + \
                     ((x[None, None, :] - blob.centre[2]) / blob.radii[2]) ** 2 <= 1.0
            slab[inside & body] = blob.label
        lut = np.zeros(256, dtype=np.float32)
        for value, extra in uptake.items():
            lut[value] = extra
        for index, channel in enumerate(channels):
            noise = rng.standard_normal(slab.shape, dtype=np.float32) * (_CT_NOISE_HU if ct else _MRI_NOISE)
            values = base[min(index, len(base) - 1)] + lut[slab] * (1.0 + 0.3 * index) + noise
            if ct:
                values = np.where(body, values, _CT_AIR_HU + noise)
            else:
                values = np.where(body, np.maximum(values, 1.0), 0.0)
            channel[z0:z0 + _SLAB] = np.clip(np.rint(values), -1024, 32767).astype(np.int16)
    return channels, label


def _write(array: np.ndarray, spacing: Sequence[float], path: Path) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in reversed(spacing)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.nii.gz")
    sitk.WriteImage(image, str(tmp), True)
    tmp.replace(path)


def write_standin(spec: DatasetSpec, geometry: CaseGeometry, source_root: Path, index: int, seed: int = 0) -> RawCase:
    """Write stand-in case ``index`` of ``spec`` at ``geometry`` under ``source_root``; return its files."""
    if spec.case_files is None:
        raise ValueError(f"{spec.key}: the registry entry does not say where its source layout keeps a case")
    case = spec.case_files(Path(source_root), index)
    channels, label = synthesize(geometry, spec, seed * 100_003 + index)
    for array, path in zip(channels, case.images):
        _write(array, geometry.spacing, path)
    _write(label, geometry.spacing, case.label)
    return case


def write_standins(spec: DatasetSpec, geometries: Sequence[CaseGeometry], source_root: Path, seed: int = 0) -> list[RawCase]:
    """Write one stand-in per geometry (indices 0, 1, ...) in ``spec``'s source layout under ``source_root``."""
    return [write_standin(spec, geometry, source_root, index, seed) for index, geometry in enumerate(geometries)]
