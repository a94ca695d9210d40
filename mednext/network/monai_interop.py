"""Weight transfer from MONAI's MedNeXt (``monai.networks.nets.mednext``) to this (official-layout) MedNeXt.

MONAI keeps stages in ModuleLists (``enc_stages.i``, ``down_blocks.i``, ``up_blocks.i`` counted from
the bottleneck, ``out_blocks.i`` from the deepest head); the official layout names each module
(``enc_block_i``, ``down_i``, ``up_{3-i}``, ``out_{4-i}``). Facts: docs/sources.md#monai-mednext.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from mednext.network.mednext_v1 import N_LEVELS, MedNeXt

_RULES: tuple[tuple[re.Pattern[str], object], ...] = (
    (re.compile(r"^enc_stages\.(\d+)\."), lambda m: f"enc_block_{m.group(1)}."),
    (re.compile(r"^down_blocks\.(\d+)\."), lambda m: f"down_{m.group(1)}."),
    (re.compile(r"^up_blocks\.(\d+)\."), lambda m: f"up_{N_LEVELS - 1 - int(m.group(1))}."),
    (re.compile(r"^dec_stages\.(\d+)\."), lambda m: f"dec_block_{N_LEVELS - 1 - int(m.group(1))}."),
    (re.compile(r"^out_blocks\.(\d+)\."), lambda m: f"out_{N_LEVELS - int(m.group(1))}."),
)


def official_key_from_monai(key: str) -> str:
    """Translate one MONAI MedNeXt state-dict key into the official v1 name."""
    for pattern, replacement in _RULES:
        if pattern.match(key):
            return pattern.sub(replacement, key, count=1)  # type: ignore[arg-type]
    return key


def load_monai_weights(network: MedNeXt, monai_state: Mapping[str, torch.Tensor]) -> None:
    """Copy a MONAI MedNeXt state dict into ``network`` (strict: every tensor must find its place).

    Raises:
        ValueError: keys that do not correspond, or shapes that differ (e.g. MONAI B/M/L, whose
            down-blocks use another expansion ratio than the official code).
    """
    translated = {official_key_from_monai(k): v for k, v in monai_state.items()}
    target = network.state_dict()
    expected = set(target) - {"dummy_tensor"}
    if set(translated) != expected:
        missing, unexpected = sorted(expected - set(translated)), sorted(set(translated) - expected)
        raise ValueError(f"MONAI state dict does not match: missing {missing[:5]}, unexpected {unexpected[:5]}")
    mismatched = [k for k, v in translated.items() if v.shape != target[k].shape]
    if mismatched:
        raise ValueError(
            f"MONAI state dict shapes differ at {mismatched[:5]} (MONAI's B/M/L down-blocks use another "
            "expansion ratio than the official v1, docs/sources.md#monai-mednext)"
        )
    network.load_state_dict({**translated, "dummy_tensor": target["dummy_tensor"]}, strict=True)
