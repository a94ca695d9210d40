"""Bad patch sizes raise one clear error naming the network, the size and the rule."""

from __future__ import annotations

import re

import pytest
import torch

import baselines
from baselines import PatchSizeError
from baselines.transbts import TransBTS

BAD_PATCHES = [
    ("TransBTS", (96, 96, 96), "only (128, 128, 128)"),
    ("TransBTS", (128, 128, 64), "only (128, 128, 128)"),
    ("UNETR", (72, 72, 72), "divisible by 16"),
    ("UNETR", (128, 128), "expected 3 spatial dimensions"),
    ("SwinUNETR", (48, 48, 48), "divisible by 32"),
    ("SwinUNETR", (32, 32, 32), "more than one voxel"),
    ("nnFormer", (48, 64, 64), "divisible by embedding patch x 2^3"),
    ("nnFormer", (160, 160, 160), "stage 2 has size (10, 10, 10), not divisible by its attention window 8"),
    ("3D-UX-Net", (40, 40, 40), "divisible by 16"),
    ("3D-UX-Net", (16, 16, 16), "more than one voxel"),
    ("TransUNet", (512, 256), "H must equal W"),
    ("TransUNet", (200, 200), "divisible by 16"),
    ("TransUNet", (16, 16), "at least 32"),
    ("TransUNet", (64, 64, 64), "expected 2 spatial dimensions"),
]


@pytest.mark.parametrize(("name", "patch", "rule"), BAD_PATCHES, ids=[f"{n}-{'x'.join(map(str, p))}" for n, p, _ in BAD_PATCHES])
def test_builder_rejects_bad_patch(name: str, patch: tuple[int, ...], rule: str) -> None:
    with pytest.raises(PatchSizeError) as info:
        baselines.build(name, 1, 2, patch)
    message = str(info.value)
    assert message.startswith(f"{name}: patch size {patch}")
    assert rule in message
    assert info.value.network == name and info.value.patch == patch


#: Sizes the reference implementations run at (their constructors run forward at these sizes,
#: docs/sources.md#baseline-params), and
#: the paper's patch (§3.1; official planners: 128³ at 1 mm, 512² for the 2D configuration).
GOOD_PATCHES = [
    ("UNETR", (96, 96, 96)), ("UNETR", (128, 128, 128)),
    ("SwinUNETR", (128, 128, 128)), ("SwinUNETR", (64, 64, 64)),
    ("nnFormer", (128, 128, 128)),
    ("3D-UX-Net", (48, 48, 48)), ("3D-UX-Net", (64, 80, 96)), ("3D-UX-Net", (128, 128, 128)),
    ("TransBTS", (128, 128, 128)),
    ("TransUNet", (224, 224)), ("TransUNet", (512, 512)),
]


@pytest.mark.parametrize(("name", "patch"), GOOD_PATCHES, ids=[f"{n}-{'x'.join(map(str, p))}" for n, p in GOOD_PATCHES])
def test_patch_rule_accepts_the_sizes_the_references_ran(name: str, patch: tuple[int, ...]) -> None:
    assert baselines.get(name).check_patch_size(patch) == patch


@pytest.mark.parametrize("name", baselines.names())
def test_paper_patch_is_the_official_planners(name: str) -> None:
    assert baselines.get(name).paper_patch_size == ((512, 512) if name == "TransUNet" else (128, 128, 128))


# forward-time checks: a network built for one size gets another


def test_unetr_forward_rejects_other_size_than_built() -> None:
    net = baselines.build("UNETR", 1, 2, (32, 32, 32))
    with pytest.raises(PatchSizeError, match=re.escape("UNETR: input size (48, 48, 48) is not allowed: "
                                                       "the network was built for (32, 32, 32)")):
        net(torch.zeros(1, 1, 48, 48, 48))


def test_nnformer_forward_rejects_other_size_than_crop() -> None:
    net = baselines.build("nnFormer", 1, 2, (64, 64, 64))
    with pytest.raises(PatchSizeError, match=re.escape("nnFormer: input size (32, 32, 32)")):
        net(torch.zeros(1, 1, 32, 32, 32))


def test_swinunetr_forward_rejects_indivisible_input() -> None:
    net = baselines.build("SwinUNETR", 1, 2, (64, 64, 64))
    with pytest.raises(PatchSizeError, match=re.escape("SwinUNETR: patch size (48, 64, 64)")):
        net(torch.zeros(1, 1, 48, 64, 64))


def test_uxnet_forward_rejects_indivisible_input() -> None:
    net = baselines.build("3D-UX-Net", 1, 2, (32, 32, 32))
    with pytest.raises(PatchSizeError, match="divisible by 16"):
        net(torch.zeros(1, 1, 24, 32, 32))


def test_transbts_forward_rejects_non_128_input() -> None:
    net = TransBTS(1, 2)
    with pytest.raises(PatchSizeError, match=re.escape("TransBTS: input size (64, 64, 64)")):
        net(torch.zeros(1, 1, 64, 64, 64))


def test_transunet_forward_rejects_3d_and_other_size() -> None:
    net = baselines.build("TransUNet", 1, 2, (64, 64))
    with pytest.raises(PatchSizeError, match=re.escape("TransUNet: input size (32, 32)")):
        net(torch.zeros(1, 1, 32, 32))
    with pytest.raises(PatchSizeError, match="input shape"):
        net(torch.zeros(1, 1, 64, 64, 64))


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: UNETR, TransUNet, TransBTS, nnFormer, SwinUNETR, 3D-UX-Net"):
        baselines.build("UNETR++", 1, 2, (128, 128, 128))
