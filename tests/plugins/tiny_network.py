"""A network added in one place: this module, named in ``$MEDNEXT_NETWORK_PLUGINS``."""

from __future__ import annotations

from torch import nn

from mednext.networks import NetworkSpec, register_network


def build_tiny(in_channels: int, n_classes: int, patch_size: tuple[int, ...]) -> nn.Module:
    """One 1x1x1 convolution: logits per voxel."""
    return nn.Conv3d(in_channels, n_classes, kernel_size=1)


def register_networks() -> None:
    register_network(NetworkSpec(name="TinyConv", builder=build_tiny, lr=1e-3, size_class="small",
                                 description="a 1x1x1 convolution (test plugin)"))
