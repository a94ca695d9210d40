"""``gradient_checkpointing: auto`` decided from a planted GPU rehearsal; ``on``/``off`` still force it."""

from __future__ import annotations

import pytest

from mednext.nnunet.checkpointing_choice import choose_gradient_checkpointing, network_checkpoints_by_default

A100_40, H100_80 = 40_000.0, 80_000.0


def test_the_official_defaults() -> None:
    # official create_mednext_v1: checkpoint_style='outside_block' for M and L only
    assert [network_checkpoints_by_default(f"MedNeXt-{v}_k3") for v in "SBML"] == [False, False, True, True]
    assert not network_checkpoints_by_default("nnUNet")


def test_auto_turns_it_off_when_the_peak_without_it_fits_the_device_with_the_margin() -> None:
    choice = choose_gradient_checkpointing("MedNeXt-L_k3", "auto", 60_000.0, "NVIDIA H100 80GB HBM3", H100_80, 1.15)
    assert not choice.enabled  # 60 GB x 1.15 = 69 GB <= 80 GB
    assert choice.measured_reserved_mb == 60_000.0 and choice.device == "NVIDIA H100 80GB HBM3"
    assert "60.0 GB reserved without checkpointing" in choice.reason and choice.reason.endswith(": off")


def test_auto_keeps_it_on_when_the_peak_does_not_fit() -> None:
    choice = choose_gradient_checkpointing("MedNeXt-L_k3", "auto", 36_000.0, "NVIDIA A100-SXM4-40GB", A100_40, 1.15)
    assert choice.enabled  # 36 GB x 1.15 = 41.4 GB > 40 GB
    assert "exceeds" in choice.reason and choice.record()["margin"] == 1.15


@pytest.mark.parametrize(("setting", "expected"), [("on", True), ("off", False), (True, True), (False, False)])
def test_on_and_off_force_it_whatever_was_measured(setting: object, expected: bool) -> None:
    choice = choose_gradient_checkpointing("MedNeXt-L_k3", setting, 60_000.0, "H100", H100_80, 1.15)
    assert choice.enabled is expected and "forced" in choice.reason


def test_auto_without_a_rehearsal_or_on_another_gpu_keeps_the_network_default() -> None:
    assert choose_gradient_checkpointing("MedNeXt-M_k5", "auto", None, None, None, 1.15).enabled
    assert not choose_gradient_checkpointing("MedNeXt-S_k3", "auto", None, None, None, 1.15).enabled
    other = choose_gradient_checkpointing("MedNeXt-L_k3", "auto", 60_000.0, "NVIDIA H100 80GB HBM3", H100_80,
                                          1.15, training_device="NVIDIA A100-SXM4-40GB")
    assert other.enabled and "training on NVIDIA A100-SXM4-40GB" in other.reason


def test_an_unknown_setting_is_an_error() -> None:
    with pytest.raises(ValueError, match="gradient_checkpointing must be one of"):
        choose_gradient_checkpointing("MedNeXt-L_k3", "sometimes", None, None, None, 1.15)
