"""Two networks that misbehave on purpose, for the divergence-guard and rescue tests.

Named in ``$MEDNEXT_NETWORK_PLUGINS`` by those tests only, so the trainers under test are the
production ones, built from the registry like every other network, with nothing test-specific in them.
"""

from __future__ import annotations

import torch
from torch import nn

from mednext.networks import NetworkSpec, register_network

#: The training forward pass from which ``NaNLoss`` returns NaN (0-based; validation passes do not count).
NAN_FROM_FORWARD = 4


class NaNAfterSomeSteps(nn.Module):
    """A 1x1x1 convolution whose output turns NaN from training forward pass :data:`NAN_FROM_FORWARD` on."""

    def __init__(self, in_channels: int, n_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, n_classes, kernel_size=1)
        self.training_forwards = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if self.training:
            self.training_forwards += 1
            if self.training_forwards > NAN_FROM_FORWARD:
                out = out * torch.nan
        return out


class BackgroundOnly(nn.Module):
    """Predicts background everywhere whatever its (trainable) convolution holds: every foreground Dice is 0."""

    def __init__(self, in_channels: int, n_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, n_classes, kernel_size=1)
        bias = torch.full((n_classes, 1, 1, 1), -10.0)
        bias[0] = 10.0
        self.register_buffer("background_first", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * 0.0 + self.background_first


def register_networks() -> None:
    register_network(NetworkSpec(name="NaNLoss", builder=lambda c, n, patch: NaNAfterSomeSteps(c, n), lr=1e-3,
                                 size_class="small", description="turns NaN after a few steps (test plugin)"))
    for name, optimizer in (("BackgroundOnly", "adamw"), ("BackgroundOnlySGD", "sgd")):
        register_network(NetworkSpec(name=name, builder=lambda c, n, patch: BackgroundOnly(c, n), lr=1e-3,
                                     optimizer=optimizer, size_class="small",
                                     description=f"predicts only background, {optimizer} (test plugin)"))
