"""Parameter and FLOP counts for Table 1 (left) and the supplementary configuration table (§6.2).

GFLOPs follow the fvcore convention, which reproduces the paper's column
(docs/sources.md#mednext-counts): one multiply-accumulate per conv weight and output
position (input position for transposed convs), plus 5 operations per GroupNorm element; GELU,
additions and padding are free. Shapes are propagated on the ``meta`` device, so a 128^3 count of
MedNeXt-L costs no memory and milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import prod

import torch
from torch import nn

GROUPNORM_OPS_PER_ELEMENT = 5  # fvcore: subtract mean, divide std, scale, shift, + statistics

_CONV_TYPES = (nn.Conv2d, nn.Conv3d)
_TRANSPOSED_CONV_TYPES = (nn.ConvTranspose2d, nn.ConvTranspose3d)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters, trainable or not (the official dummy tensor counts as 1)."""
    return sum(p.numel() for p in model.parameters())


def _module_flops(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    if isinstance(module, _TRANSPOSED_CONV_TYPES):
        x = inputs[0]
        return x.shape[0] * module.weight.numel() * prod(x.shape[2:])
    if isinstance(module, _CONV_TYPES):
        return output.shape[0] * module.weight.numel() * prod(output.shape[2:])
    if isinstance(module, nn.GroupNorm):
        return GROUPNORM_OPS_PER_ELEMENT * inputs[0].numel()
    return 0


def count_flops(
    build_model: Callable[[], nn.Module], input_shape: Sequence[int]
) -> int:
    """Forward FLOPs (fvcore convention) of the model ``build_model()`` on an input of ``input_shape``.

    The model is built on the meta device, so nothing is allocated.
    """
    with torch.device("meta"):
        model = build_model()
    model.eval()
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += _module_flops(module, inputs, output)

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (*_CONV_TYPES, *_TRANSPOSED_CONV_TYPES, nn.GroupNorm))
    ]
    try:
        with torch.no_grad():
            model(torch.empty(*input_shape, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return total
