"""Acceptance 1: parameter counts within 0.5% of the reference implementations (facts §A)."""

from __future__ import annotations

import pytest

import baselines
from baselines.transbts import TransBTS

# (name, in_channels, n_classes, patch, reference parameters) from
# shared/reference/baselines_metrics_datasets.md §A (the author's runs of each reference constructor)
REFERENCE = [
    ("UNETR", 1, 14, (128, 128, 128), 93.03e6),
    ("SwinUNETR", 1, 14, (128, 128, 128), 62.19e6),
    ("nnFormer", 1, 14, (128, 128, 128), 37.66e6),
    ("3D-UX-Net", 1, 14, (128, 128, 128), 53.01e6),
    ("TransBTS", 4, 3, (128, 128, 128), 32.99e6),
    ("TransUNet", 1, 14, (512, 512), 105.91e6),
]


@pytest.mark.parametrize(("name", "cin", "ncls", "patch", "reference"), REFERENCE, ids=[r[0] for r in REFERENCE])
def test_parameter_count_matches_reference(name: str, cin: int, ncls: int, patch: tuple[int, ...], reference: float) -> None:
    count = baselines.count_parameters(baselines.build(name, cin, ncls, patch))
    assert abs(count / reference - 1) < 0.005, f"{name}: {count / 1e6:.3f}M vs reference {reference / 1e6:.2f}M"


def test_registry_reference_counts_are_the_tested_ones() -> None:
    """The metadata the tables read carries the same settings as the checks above."""
    for name, cin, ncls, patch, reference in REFERENCE:
        ref = baselines.get(name).reference
        assert (ref.in_channels, ref.n_classes, ref.patch_size) == (cin, ncls, patch)
        assert ref.params == pytest.approx(reference, rel=1e-3)


def test_nnformer_count_depends_on_crop_only_through_window_bias_tables() -> None:
    """At 64^3 the two deepest stages shrink their windows (8 -> 4, 4 -> 2): only bias tables change."""
    big = baselines.build("nnFormer", 1, 14, (128, 128, 128))
    small = baselines.build("nnFormer", 1, 14, (64, 64, 64))
    diff = baselines.count_parameters(big) - baselines.count_parameters(small)
    # encoder stage 2 (12 heads) and decoder stage 2 (24 heads): window 8 -> 4, 2 blocks each;
    # encoder stage 3 (24 heads): window 4 -> 2, 2 blocks
    expected = 2 * 12 * (15**3 - 7**3) + 2 * 24 * (15**3 - 7**3) + 2 * 24 * (7**3 - 3**3)
    assert diff == expected


def test_transbts_unused_reference_modules_are_the_whole_gap() -> None:
    """The reference builds a 128*C->512 linear projection and a final LayerNorm it never uses."""
    full = baselines.count_parameters(TransBTS(4, 3))
    lean = baselines.count_parameters(TransBTS(4, 3, keep_unused_reference_params=False))
    assert full - lean == (128 * 4 * 512 + 512) + 2 * 512
