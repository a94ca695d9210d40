"""Every baseline runs forward and backward, with the output shapes asserted.

Fast tests use each network's smallest legal patch; TransBTS only exists at 128^3, so its fast test
runs the same class at img_size 32 (position embedding 4^3 tokens). ``-m slow`` runs every network's
forward pass at the paper's patch (1x1x128^3, 1x1x512^2 for TransUNet): the backward wiring is the
same at every size and is checked by the fast tests; timings and peak memory of a full step at the
paper's patch: benchmarks/bench_baselines.py.
"""

from __future__ import annotations

import pytest
import torch

import baselines
from baselines.transbts import TransBTS

SHRINKABLE = [n for n in baselines.names() if n != "TransBTS"]
#: parameters that legitimately get no gradient: MONAI 1.6's ViT blocks build a cross-attention
#: LayerNorm even without cross-attention; TransBTS keeps the reference's two unused modules.
NO_GRAD_OK = ("norm_cross_attn", "unused_")


def _forward_backward(name: str, patch: tuple[int, ...], in_channels: int = 1, n_classes: int = 3, batch: int = 1) -> None:
    _check_forward_backward(baselines.build(name, in_channels, n_classes, patch), name, patch, in_channels, n_classes, batch)


def _check_forward_backward(
    net: torch.nn.Module, name: str, patch: tuple[int, ...], in_channels: int, n_classes: int, batch: int
) -> None:
    net.train()
    x = torch.randn(batch, in_channels, *patch, requires_grad=True)
    y = net(x)
    assert y.shape == (batch, n_classes, *patch)
    assert torch.isfinite(y).all()
    # a per-voxel target makes every output voxel matter: catches heads that ignore a region
    target = torch.randint(0, n_classes, (batch, *patch))
    torch.nn.functional.cross_entropy(y, target).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    no_grad = [n for n, p in net.named_parameters() if p.grad is None and not any(k in n for k in NO_GRAD_OK)]
    assert not no_grad, f"{name}: parameters without gradient: {no_grad[:5]}"


@pytest.mark.parametrize("name", SHRINKABLE)
def test_forward_backward_smallest_patch(name: str) -> None:
    _forward_backward(name, baselines.get(name).smallest_patch_size)


def test_transbts_wiring_forward_backward_at_32() -> None:
    """TransBTS is built only at 128^3 (slow test below); its class at img_size 32 checks the wiring fast."""
    net = TransBTS(4, 3, img_size=32)
    assert net.position_embedding.shape == (1, 4**3, 512)
    _check_forward_backward(net, "TransBTS", (32, 32, 32), 4, 3, 1)


def test_eval_mode_is_deterministic() -> None:
    """Dropout (TransBTS' channel dropout included in the reference even at inference) is off in eval."""
    net = TransBTS(1, 3, img_size=32).eval()
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), net(x))


@pytest.mark.slow
@pytest.mark.parametrize("name", baselines.names())
def test_forward_paper_patch(name: str) -> None:
    spec = baselines.get(name)
    channels, classes = spec.reference.in_channels, spec.reference.n_classes
    net = baselines.build(name, channels, classes, spec.paper_patch_size).eval()
    with torch.no_grad():
        y = net(torch.randn(1, channels, *spec.paper_patch_size))
    assert y.shape == (1, classes, *spec.paper_patch_size)
    assert torch.isfinite(y).all()


def test_transbts_unused_reference_modules_get_no_gradient() -> None:
    """The reference's two unused modules exist at every size; img_size 32 keeps the test fast."""
    net = TransBTS(1, 2, img_size=32)
    net(torch.randn(1, 1, 32, 32, 32)).mean().backward()
    missing = sorted({n.split(".")[0] for n, p in net.named_parameters() if p.grad is None})
    assert missing == ["unused_final_norm", "unused_linear_encoding"]
