"""The MedNeXt paper's baselines (§3, Table 2) as the official runs configured them.

``build(name, in_channels, n_classes, patch_size)`` gives the network; ``get(name)`` its entry
in the project's one network registry, a :class:`mednext.networks.NetworkSpec` (learning rate,
optimiser, patch rule, reference parameter count). Names: UNETR, TransUNet, TransBTS, nnFormer,
SwinUNETR, 3D-UX-Net.
"""

from __future__ import annotations

from baselines._common import PatchSizeError, count_parameters
from baselines.registry import BASELINES, build, get, names

__all__ = ["BASELINES", "PatchSizeError", "build", "count_parameters", "get", "names"]
