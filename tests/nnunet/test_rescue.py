"""The epoch-100 rescue against the official v1 code, item by item.

Official facts (MIC-DKFZ/MedNeXt, nnunet_mednext/training/network_training/nnUNetTrainerV2.py,
``on_epoch_end``; nnunet_mednext/network_architecture/initialization.py, ``InitWeights_He``):
the check runs when ``self.epoch == 100`` (0-based, after the epoch), fires when the epoch's
``all_val_eval_metrics[-1] == 0`` (the mean over foreground classes, NaN classes dropped), then sets
``optimizer.param_groups[0]["momentum"] = 0.95`` and applies ``InitWeights_He(1e-2)``:
``kaiming_normal_(weight, a=1e-2)`` and bias 0 on Conv2d/Conv3d/ConvTranspose2d/ConvTranspose3d. Nothing
else changes: no other parameter group, no optimiser state, no learning rate.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mednext.network import create_mednext_v1
from mednext.nnunet.rescue import (
    OFFICIAL_RESCUE_EPOCH,
    RescueState,
    apply_rescue,
    describe,
    read_rescue_record,
    record_still_holds,
    rescue_due,
    write_rescue_record,
)

OFFICIAL = {"epoch": 100, "momentum": 0.95, "he_slope": 1e-2, "sgd_momentum": 0.99}


def test_it_fires_only_at_the_official_epoch_on_a_zero_dice() -> None:
    assert OFFICIAL_RESCUE_EPOCH == OFFICIAL["epoch"]
    assert rescue_due(100, OFFICIAL_RESCUE_EPOCH, 0.0)
    assert not rescue_due(99, OFFICIAL_RESCUE_EPOCH, 0.0) and not rescue_due(101, OFFICIAL_RESCUE_EPOCH, 0.0)
    assert not rescue_due(100, OFFICIAL_RESCUE_EPOCH, 1e-6)
    assert not rescue_due(100, OFFICIAL_RESCUE_EPOCH, math.nan)  # official: mean of no class is NaN, NaN != 0
    assert rescue_due(3, 3, 0.0) and not rescue_due(3, None, 0.0)  # configurable, or off


def _stepped(optimizer: torch.optim.Optimizer, network: nn.Module) -> None:
    network(torch.randn(2, 1, 8, 8, 8)).sum().backward()
    optimizer.step()


def test_sgd_first_group_momentum_to_095_nothing_else() -> None:
    network = nn.Sequential(nn.Conv3d(1, 4, 3), nn.Conv3d(4, 2, 1))
    # nnU-Net's SGD (0.99, Nesterov), with a second group to show that only the first is touched
    optimizer = torch.optim.SGD([{"params": network[0].parameters()}, {"params": network[1].parameters()}], lr=0.01,
                                weight_decay=3e-5, momentum=OFFICIAL["sgd_momentum"], nesterov=True)
    _stepped(optimizer, network)
    buffers = {id(p): optimizer.state[p]["momentum_buffer"].clone() for p in network.parameters()}
    groups = [dict((k, v) for k, v in g.items() if k != "params") for g in optimizer.param_groups]
    state = apply_rescue(RescueState(epoch=100), network, optimizer, epoch=100, mean_foreground_dice=0.0)
    assert optimizer.param_groups[0]["momentum"] == OFFICIAL["momentum"]
    assert (state.momentum_before, state.momentum_after) == (0.99, 0.95)
    assert {k: v for k, v in optimizer.param_groups[0].items() if k not in ("params", "momentum")} == \
        {k: v for k, v in groups[0].items() if k != "momentum"}
    assert {k: v for k, v in optimizer.param_groups[1].items() if k != "params"} == groups[1]  # untouched
    assert all(torch.equal(optimizer.state[p]["momentum_buffer"], buffers[id(p)]) for p in network.parameters())


def test_adamw_has_no_momentum_so_only_the_weights_change() -> None:
    network = nn.Sequential(nn.Conv3d(1, 4, 3), nn.GroupNorm(2, 4))
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3, weight_decay=3e-5, eps=1e-4)  # MedNeXt's (§3.1)
    _stepped(optimizer, network)
    before = optimizer.state_dict()
    state = apply_rescue(RescueState(epoch=100), network, optimizer, epoch=100, mean_foreground_dice=0.0)
    after = optimizer.state_dict()
    assert after["param_groups"] == before["param_groups"]
    assert all(torch.equal(after["state"][i][k], before["state"][i][k]) for i in before["state"] for k in before["state"][i])
    assert state.momentum_before is None and state.momentum_after is None
    assert "no momentum" in describe(state)


def test_reinitialisation_is_he_normal_on_convolutions_only() -> None:
    network = create_mednext_v1(in_channels=1, n_classes=3, variant="S", kernel_size=3, deep_supervision=True)
    before = {name: p.detach().clone() for name, p in network.named_parameters()}
    conv_types = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    conv_params = {f"{module_name}.{p}" for module_name, m in network.named_modules() if isinstance(m, conv_types)
                   for p, _ in m.named_parameters(recurse=False)}
    assert any(isinstance(m, nn.ConvTranspose3d) for m in network.modules())  # the up-sampling blocks are covered
    state = apply_rescue(RescueState(epoch=2), network, torch.optim.AdamW(network.parameters()), epoch=2,
                         mean_foreground_dice=0.0)
    assert state.reinitialised_modules == sum(isinstance(m, conv_types) for m in network.modules())
    for name, p in network.named_parameters():
        if name in conv_params and name.endswith("bias"):
            assert torch.count_nonzero(p) == 0, name
        elif name in conv_params:
            assert not torch.equal(p, before[name]), name
        else:
            assert torch.equal(p, before[name]), name  # norms and anything else untouched


def test_the_he_draw_has_the_official_scale() -> None:
    conv = nn.Conv3d(64, 128, 3)
    apply_rescue(RescueState(), conv, torch.optim.SGD(conv.parameters(), lr=0.1, momentum=0.99), 100, 0.0)
    fan_in = 64 * 3 ** 3
    expected_std = math.sqrt(2 / (1 + OFFICIAL["he_slope"] ** 2)) / math.sqrt(fan_in)  # Kaiming normal, leaky slope a
    assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.02)
    assert abs(conv.weight.mean().item()) < 0.05 * expected_std  # zero-mean (221,184 draws)


def test_the_record_survives_a_resume(tmp_path) -> None:
    state = RescueState(epoch=100, fired=True, fired_at_epoch=100, mean_foreground_dice=0.0, momentum_before=0.99,
                        momentum_after=0.95, reinitialised_modules=12)
    write_rescue_record(tmp_path, state)
    assert read_rescue_record(tmp_path) == state
    assert read_rescue_record(tmp_path / "elsewhere") is None


def test_a_resume_keeps_the_record_only_when_its_checkpoint_is_newer_than_the_rescue() -> None:
    fired = RescueState(epoch=100, fired=True, fired_at_epoch=100, mean_foreground_dice=0.0)
    assert record_still_holds(fired, resumed=True, epochs_done=150)  # latest written after epoch 100's rescue
    assert not record_still_holds(fired, resumed=True, epochs_done=100)  # latest from epoch 99: epoch 100 is redone
    assert not record_still_holds(fired, resumed=False, epochs_done=0)  # a fresh start
    assert not record_still_holds(RescueState(epoch=100), resumed=True, epochs_done=150)  # never fired
