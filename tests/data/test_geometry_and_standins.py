"""Geometry profiles of the registry's datasets, the choice of rehearsal cases, and stand-ins that the
dataset's own finder and conversion accept."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mednext.data.convert import validate_case
from mednext.data.geometry import CaseGeometry, GeometryProfile, rank_by_planned_voxels, uniform_profile
from mednext.data.layouts import find_cases
from mednext.data.registry import PAPER_DATASETS, get_dataset
from mednext.data.standins import write_standins


@pytest.mark.parametrize("key", PAPER_DATASETS)
def test_each_paper_dataset_has_a_sourced_profile_within_its_stated_ranges(key: str) -> None:
    profile = get_dataset(key).geometry
    assert profile is not None and profile.source
    for case in (profile.smallest, profile.median, profile.largest):
        assert profile.slices[0] <= case.shape[0] <= profile.slices[1]
        assert profile.slice_spacing_mm[0] <= case.spacing[0] <= profile.slice_spacing_mm[1] + 1e-9
        assert profile.inplane_spacing_mm[0] - 1e-3 <= case.spacing[1] <= profile.inplane_spacing_mm[1] + 1e-3


def test_kits19_extremes_are_its_real_cases() -> None:
    # headers of case_00130 and case_00165 (neheller/kits19 labels): 53 x 512 x 512 at 3 mm and 734 at 1 mm
    profile = get_dataset("kits19").geometry
    assert profile.smallest.voxels_at() == round(53 * 3.0) * round(512 * 0.546875) ** 2
    assert profile.largest.shape_at() == (734, 497, 497)  # 512 x 0.9707 mm = 497 mm in-plane
    assert get_dataset("brats21").geometry.largest.shape == (155, 240, 240)  # BraTS: one grid for every case


def test_three_cases_are_the_smallest_the_median_and_the_largest() -> None:
    profile = get_dataset("btcv").geometry
    assert profile.cases(3) == [profile.smallest, profile.median, profile.largest]
    assert profile.cases(1) == [profile.median]
    five = profile.cases(5)
    assert five[0] == profile.smallest and five[-1] == profile.largest and profile.median in five
    assert [g.voxels_at() for g in five] == sorted(g.voxels_at() for g in five)


def test_real_cases_are_ranked_by_voxels_at_the_planned_spacing() -> None:
    # 100 slices at 5 mm hold more tissue than 400 slices at 1 mm: ranked by extent, not by stored voxels
    cases = [("thin", CaseGeometry((400, 512, 512), (1.0, 0.5, 0.5))),
             ("thick", CaseGeometry((100, 512, 512), (5.0, 0.5, 0.5))),
             ("small", CaseGeometry((50, 256, 256), (2.0, 0.8, 0.8))),
             ("mid", CaseGeometry((200, 512, 512), (1.5, 0.7, 0.7))),
             ("tiny", CaseGeometry((20, 128, 128), (1.0, 1.0, 1.0)))]
    chosen = [name for name, _ in rank_by_planned_voxels(cases, 3)]
    by_extent = sorted(cases, key=lambda c: math.prod(n * s for n, s in zip(c[1].shape, c[1].spacing)))
    assert chosen == [by_extent[0][0], by_extent[2][0], by_extent[-1][0]]
    assert [name for name, _ in rank_by_planned_voxels(cases, 1)] == [by_extent[2][0]]


def test_a_profile_out_of_order_is_refused() -> None:
    small, big = CaseGeometry((10, 10, 10), (1, 1, 1)), CaseGeometry((20, 20, 20), (1, 1, 1))
    with pytest.raises(ValueError, match="must grow"):
        GeometryProfile(big, small, big, (10, 20), (1, 1), (1, 1), "test")


@pytest.mark.parametrize("key", PAPER_DATASETS)
def test_small_stand_ins_are_found_and_pass_conversion_checks(key: str, tmp_path: Path) -> None:
    """Stand-ins at a small planted geometry, in the dataset's own layout: its finder finds them, conversion's
    validation accepts them (channels, one grid, label values of the source), on the requested grid."""
    tiny = uniform_profile(CaseGeometry((12, 24, 20), (2.5, 0.8, 0.9)), "test")
    spec = replace(get_dataset(key), geometry=tiny)
    written = write_standins(spec, tiny.cases(2), tmp_path)
    found = find_cases(spec, tmp_path)
    assert [c.case_id for c in found] == sorted(c.case_id for c in written)
    for case in found:
        images, label, _ = validate_case(case, spec)
        assert len(images) == len(spec.channel_names)
        assert label.shape == (12, 24, 20)
        assert images[0].GetSpacing() == pytest.approx((0.9, 0.8, 2.5))  # SimpleITK: x, y, z
        present = set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(case.label)))).tolist())
        assert present <= set(spec.source_label_values) and len(present) > 1
