"""Helpers shared by the baseline networks: patch-size errors and checks, parameter counts.

Free of torch at import time: the network registry imports this package at every DAG parse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn


class PatchSizeError(ValueError):
    """A patch (or input) size that a baseline network cannot process.

    The message names the network, the size given and the rule it breaks.
    """

    def __init__(self, network: str, patch: Sequence[int], rule: str, where: str = "patch size") -> None:
        self.network = network
        self.patch = tuple(int(p) for p in patch)
        self.rule = rule
        super().__init__(f"{network}: {where} {self.patch} is not allowed: {rule}")


def as_patch(patch_size: Sequence[int] | int, ndim: int, network: str) -> tuple[int, ...]:
    """Normalise ``patch_size`` to a tuple of ``ndim`` positive ints, or raise PatchSizeError."""
    if isinstance(patch_size, int):
        patch = (patch_size,) * ndim
    else:
        patch = tuple(int(p) for p in patch_size)
    if len(patch) != ndim:
        raise PatchSizeError(network, patch, f"expected {ndim} spatial dimensions, found {len(patch)}")
    if any(p <= 0 for p in patch):
        raise PatchSizeError(network, patch, "every dimension must be positive")
    return patch


def require_divisible(network: str, patch: Sequence[int], divisor: int, why: str) -> None:
    """Raise PatchSizeError unless every dimension of ``patch`` is a multiple of ``divisor``."""
    if any(p % divisor for p in patch):
        raise PatchSizeError(network, patch, f"each dimension must be divisible by {divisor} ({why})")


def require_bottleneck_above_one_voxel(network: str, patch: Sequence[int], divisor: int) -> None:
    """Raise PatchSizeError if the 1/``divisor`` level would be one voxel (instance norm needs more)."""
    if all(p == divisor for p in patch):
        raise PatchSizeError(
            network, patch, f"the 1/{divisor} level must hold more than one voxel (instance norm needs >1 spatial element)"
        )


def check_input_shape(network: str, x: torch.Tensor, expected: Sequence[int] | None, ndim: int) -> None:
    """Check a forward input: ``ndim`` spatial dims and, if ``expected`` is given, exactly that size."""
    if x.dim() != ndim + 2:
        raise PatchSizeError(
            network, tuple(x.shape), f"expected a (batch, channels, {ndim} spatial dims) tensor", "input shape"
        )
    spatial = tuple(x.shape[2:])
    if expected is not None and spatial != tuple(expected):
        raise PatchSizeError(
            network, spatial, f"the network was built for {tuple(expected)} and accepts only that size", "input size"
        )


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters, as the reference scripts count them."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
