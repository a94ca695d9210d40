"""UpKern (paper §2.3): copy equal tensors, resample kernels, clear errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mednext.network import create_mednext_v1
from mednext.upkern import load_state_dict_any, resample_kernel, upkern_load


def _trained_like(variant: str = "S", kernel: int = 3, dim: str = "3d", ds: bool = True):
    net = create_mednext_v1(1, 4, variant, kernel, deep_supervision=ds, dim=dim)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # move away from the default init
    return net


def test_k3_to_k3_is_an_exact_copy() -> None:
    source = _trained_like()
    target = create_mednext_v1(1, 4, "S", 3, deep_supervision=True)
    report = upkern_load(target, source.state_dict())
    assert not report.resampled and not report.missing and not report.unused
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


@pytest.mark.parametrize("dim", ["3d", "2d"])
def test_k3_to_k5_resamples_kernels_and_copies_the_rest(dim: str) -> None:
    source = _trained_like(dim=dim)
    target = create_mednext_v1(1, 4, "S", 5, deep_supervision=True, dim=dim)
    report = upkern_load(target, source.state_dict())
    src, tgt = source.state_dict(), target.state_dict()
    depthwise = [k for k in src if k.endswith("conv1.weight")]
    assert sorted(report.resampled) == sorted(depthwise) and len(depthwise) == 26  # 18 blocks + 8 resamplers
    mode = "trilinear" if dim == "3d" else "bilinear"
    for key in depthwise:
        expected = F.interpolate(src[key], size=tgt[key].shape[2:], mode=mode, align_corners=False)
        torch.testing.assert_close(tgt[key], expected, rtol=0, atol=0, msg=key)
    for key in set(src) - set(depthwise):
        assert torch.equal(tgt[key], src[key]), key


def test_resampling_matches_hand_computed_linear_interpolation() -> None:
    """align_corners=False: 3->5 samples source positions (i+0.5)*3/5-0.5 = -0.2, 0.4, 1.0, 1.6, 2.2 (clamped)."""
    ramp = torch.tensor([0.0, 1.0, 2.0]).view(1, 1, 3, 1, 1).expand(1, 1, 3, 3, 3).contiguous()
    out = resample_kernel(ramp, (5, 5, 5))
    expected = torch.tensor([0.0, 0.4, 1.0, 1.6, 2.0])
    torch.testing.assert_close(out[0, 0, :, 2, 2], expected)
    torch.testing.assert_close(out[0, 0, :, 0, 4], expected)  # constant along the other axes
    constant = resample_kernel(torch.full((2, 1, 3, 3), 0.7), (5, 5))
    torch.testing.assert_close(constant, torch.full((2, 1, 5, 5), 0.7))


@pytest.mark.parametrize("layout", ["nnunet_v2", "official_v1", "compiled"])
def test_upkern_from_a_saved_checkpoint_file(tmp_path, layout: str) -> None:
    source = _trained_like()
    state = source.state_dict()
    if layout == "nnunet_v2":  # nnU-Net v2 keeps numpy scalars beside the weights
        payload = {"network_weights": state, "current_epoch": 3, "trainer_name": "x",
                   "logging": {"ema_fg_dice": [np.float32(0.5)], "mean_fg_dice": [np.float64(0.4)]},
                   "_best_ema": np.float32(0.5)}
    elif layout == "official_v1":
        payload = {"epoch": 1000, "state_dict": {f"module.{k}": v for k, v in state.items()}}
    else:
        payload = {"network_weights": {f"_orig_mod.{k}": v for k, v in state.items()}}
    path = tmp_path / "checkpoint_final.pth"
    torch.save(payload, path)
    target = create_mednext_v1(1, 4, "S", 5, deep_supervision=True)
    report = upkern_load(target, path)
    assert len(report.copied) + len(report.resampled) == len(state)
    key = "enc_block_0.0.conv1.weight"
    expected = F.interpolate(state[key], size=(5, 5, 5), mode="trilinear", align_corners=False)
    torch.testing.assert_close(target.state_dict()[key], expected, rtol=0, atol=0)


def test_channel_mismatch_names_the_key() -> None:
    source = _trained_like("S")
    target = create_mednext_v1(1, 4, "B", 5, deep_supervision=True)
    with pytest.raises(ValueError, match=r"channel mismatch at key 'down_0\.conv2\.weight'"):
        upkern_load(target, source.state_dict())


def test_keys_missing_from_source_keep_their_init_with_a_warning(caplog) -> None:
    source = _trained_like(ds=False)
    target = create_mednext_v1(1, 4, "S", 5, deep_supervision=True)
    head_before = target.out_1.conv_out.weight.detach().clone()
    with caplog.at_level(logging.WARNING, logger="mednext.upkern"):
        report = upkern_load(target, source.state_dict())
    assert sorted(report.missing) == sorted(f"out_{i}.conv_out.{p}" for i in range(1, 5) for p in ("weight", "bias"))
    assert torch.equal(target.out_1.conv_out.weight, head_before)
    assert "kept their initialisation" in caplog.text


def test_unreadable_or_missing_checkpoint_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="UpKern source checkpoint not found"):
        load_state_dict_any(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=f"cannot read checkpoint {bad}"):
        load_state_dict_any(bad)
    empty = tmp_path / "empty.pth"
    torch.save({"epoch": 3}, empty)
    with pytest.raises(ValueError, match="contains no tensors"):
        load_state_dict_any(empty)
