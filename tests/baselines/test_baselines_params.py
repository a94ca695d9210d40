"""Parameter counts within 0.5% of the reference implementations.

The reference counts live once, on each registry entry (``NetworkSpec.reference``); the tests check
the built networks against them, and the entries against sources outside the code: the counts of the
reference constructors in docs/sources.md#baseline-params and the 3D UX-Net README table.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import baselines
from baselines.transbts import TransBTS

SOURCES = Path(__file__).resolve().parents[2] / "docs" / "sources.md"
#: Row names of the table under ``### baseline-params`` in docs/sources.md.
FACTS_ROW = {"UNETR": "UNETR", "TransUNet": "TransUNet", "TransBTS": "TransBTS", "nnFormer": "nnFormer",
             "SwinUNETR": "SwinUNETR", "3D-UX-Net": "3D UX-Net"}


@pytest.mark.parametrize("name", baselines.names())
def test_parameter_count_matches_reference(name: str) -> None:
    ref = baselines.get(name).reference
    assert ref is not None, f"{name}: no reference count recorded"
    count = baselines.count_parameters(baselines.build(name, ref.in_channels, ref.n_classes, ref.patch_size))
    assert abs(count / ref.params - 1) < 0.005, f"{name}: {count / 1e6:.3f}M vs reference {ref.params / 1e6:.2f}M"


def test_reference_counts_are_the_documented_ones() -> None:
    """Each entry's count is the last cell of its row in docs/sources.md#baseline-params (e.g. ``93.03M``)."""
    section = SOURCES.read_text().split("\n### baseline-params\n", 1)[1].split("\n### ", 1)[0]
    rows = {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| ")}
    for name, row_name in FACTS_ROW.items():
        ref = baselines.get(name).reference
        params = re.findall(r"(\d+\.\d+)M", rows[row_name].rstrip(" |").rsplit("|", 1)[-1])
        assert f"{ref.params / 1e6:.2f}" in params, f"{name}: {ref.params / 1e6:.2f}M not in its row {params}"


def test_reference_counts_agree_with_the_3d_ux_net_readme() -> None:
    """MASILab/3DUX-Net README (96³, 1→14): UNETR 92.8M, SwinUNETR 62.2M, 3D UX-Net 53.0M.

    SwinUNETR and 3D UX-Net counts do not depend on the patch; UNETR's learned position embedding has
    one 768-vector per 16³ patch, so 96³ has (8³ - 6³) x 768 parameters fewer than 128³.
    """
    unetr = baselines.get("UNETR").reference
    assert unetr.patch_size == (128, 128, 128)
    assert round((unetr.params - (8**3 - 6**3) * 768) / 1e6, 1) == 92.8
    assert round(baselines.get("SwinUNETR").reference.params / 1e6, 1) == 62.2
    assert round(baselines.get("3D-UX-Net").reference.params / 1e6, 1) == 53.0


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
