"""Registry metadata: the MedNeXt runs' optimisers (mednext_official.md §5) and the project registry hook."""

from __future__ import annotations

import pytest
import torch

import baselines
from mednext.networks import get_network, list_networks

# paper name -> (lr, optimiser, spatial dims) from the official trainers
OFFICIAL = {
    "UNETR": (1e-4, "AdamW", 3),
    "TransUNet": (1e-4, "AdamW", 2),
    "TransBTS": (1e-4, "SGD", 3),
    "nnFormer": (5e-5, "AdamW", 3),
    "SwinUNETR": (1e-4, "AdamW", 3),
    "3D-UX-Net": (5e-4, "AdamW", 3),
}


def test_names_follow_table_2() -> None:
    assert baselines.names() == list(OFFICIAL)


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_optimiser_as_the_official_trainer(name: str) -> None:
    lr, optimiser, dims = OFFICIAL[name]
    spec = baselines.get(name)
    assert (spec.initial_lr, spec.optimizer, spec.spatial_dims, spec.deep_supervision) == (lr, optimiser, dims, False)
    opt = spec.make_optimizer([torch.nn.Parameter(torch.zeros(2))])
    group = opt.param_groups[0]
    assert type(opt).__name__ == optimiser and group["lr"] == lr and group["weight_decay"] == 3e-5
    if optimiser == "AdamW":
        assert group["eps"] == 1e-4
    else:
        assert group["momentum"] == 0.99 and group["nesterov"] is True


def test_registered_in_project_registry_with_same_settings() -> None:
    assert list_networks(["baseline"])[: len(OFFICIAL)] == list(OFFICIAL)
    for name, (lr, optimiser, dims) in OFFICIAL.items():
        entry = get_network(name)
        spec = baselines.get(name)
        assert entry.builder is spec.builder
        assert (entry.lr, entry.optimizer, entry.deep_supervision) == (lr, optimiser.lower(), False)
        assert entry.configuration == ("2d" if dims == 2 else "3d_fullres")
        assert entry.adam_eps == (1e-4 if optimiser == "AdamW" else 1e-8)
        # the registry's generic divisibility check must accept the smallest legal patch
        assert all(p % entry.input_divisor == 0 for p in spec.smallest_patch_size)


def test_register_networks_is_idempotent() -> None:
    from baselines.registry import register_networks

    before = {n: get_network(n) for n in OFFICIAL}
    register_networks()
    assert {n: get_network(n) for n in OFFICIAL} == before
