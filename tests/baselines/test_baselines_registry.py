"""Registry entries: the MedNeXt runs' training settings in the one network registry.

The official values: MedNeXt's baseline trainers, docs/sources.md#baseline-trainers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import baselines
from mednext.networks import get_network, list_networks
from mednext.nnunet.trainer_classes import trainer_for_network
from mednext.nnunet.trainers import NoDeepSupervisionTrainer

REPO = Path(__file__).resolve().parents[2]

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


@pytest.mark.parametrize(("name", "module"), [("UNETR", "unetr"), ("TransUNet", "transunet"), ("TransBTS", "transbts"),
                                            ("nnFormer", "nnformer"), ("SwinUNETR", "swin_unetr"), ("3D-UX-Net", "uxnet3d")])
def test_a_baseline_module_is_imported_only_when_its_network_is_built(name: str, module: str) -> None:
    """Looking a baseline up (every DAG parse) imports neither its module nor MONAI; building it does."""
    script = f"""
import sys
from mednext.networks import get_network, list_networks
spec = get_network({name!r})
assert {name!r} in list_networks(["baseline"])
assert "baselines.{module}" not in sys.modules and "monai" not in sys.modules, sorted(m for m in sys.modules if "monai" in m)[:3]
from baselines import {module}
assert {module}.NAME == {name!r}, {module}.NAME  # the registry's name is the module's own
assert spec.check_patch_size(spec.smallest_patch_size) == tuple(spec.smallest_patch_size)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
