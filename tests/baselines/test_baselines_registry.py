"""Registry entries: the MedNeXt runs' training settings (mednext_official.md §5) in the one network registry."""

from __future__ import annotations

import pytest

import baselines
from mednext.networks import get_network, list_networks
from mednext.nnunet.trainer_classes import trainer_for_network
from mednext.nnunet.trainers import NoDeepSupervisionTrainer

# paper name -> (lr, optimiser, nnU-Net configuration) read from the official trainers
# nnUNet_variants/baselines/nnUNetTrainerV2_<name>.py (all subclass nnUNetTrainerV2_noDeepSupervision)
OFFICIAL = {
    "UNETR": (1e-4, "adamw", "3d_fullres"),
    "TransUNet": (1e-4, "adamw", "2d"),
    "TransBTS": (1e-4, "sgd", "3d_fullres"),
    "nnFormer": (5e-5, "adamw", "3d_fullres"),
    "SwinUNETR": (1e-4, "adamw", "3d_fullres"),
    "3D-UX-Net": (5e-4, "adamw", "3d_fullres"),
}


def test_names_follow_table_2() -> None:
    assert baselines.names() == list(OFFICIAL)
    assert list_networks(["baseline"])[: len(OFFICIAL)] == list(OFFICIAL)


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_registry_entry_as_the_official_trainer(name: str) -> None:
    lr, optimiser, configuration = OFFICIAL[name]
    entry = get_network(name)
    assert baselines.get(name) is entry  # one spec, not a translated copy
    assert (entry.lr, entry.optimizer, entry.configuration, entry.weight_decay) == (lr, optimiser, configuration, 3e-5)
    if optimiser == "adamw":
        assert entry.adam_eps == 1e-4  # "1e-8 might cause nans in fp16" in every AdamW baseline trainer
    # deep_supervision is what picks the trainer base: no deep supervision, as nnUNetTrainerV2_noDeepSupervision
    assert entry.deep_supervision is False
    assert trainer_for_network(name).__mro__[1] is NoDeepSupervisionTrainer
    # the registry's generic divisibility check must accept the smallest legal patch
    assert entry.smallest_patch_size is not None
    assert all(p % entry.input_divisor == 0 for p in entry.smallest_patch_size)


def test_register_networks_is_idempotent() -> None:
    from baselines.registry import register_networks

    before = {n: get_network(n) for n in OFFICIAL}
    register_networks()
    assert {n: get_network(n) for n in OFFICIAL} == before
