"""MedNeXt v1 architecture: exact parameter counts, output shapes, state-dict layout."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from mednext.complexity import count_parameters
from mednext.network import KERNEL_SIZES, VARIANTS, MedNeXt, create_mednext_v1

# Exact counts, 1 input channel, 14 classes, deep supervision on: each rounds to the paper's Supp. 6.2 value
# (S-k5 aside, DEVIATIONS.md); docs/sources.md#mednext-counts.
EXPECTED_PARAMETERS_DS = {
    ("S", 3): 5_564_807, ("B", 3): 10_540_199, ("M", 3): 17_562_855, ("L", 3): 61_793_159,
    ("S", 5): 5_994_439, ("B", 5): 10_969_831, ("M", 5): 18_274_727, ("L", 5): 63_006_791,
}
DS_HEAD_PARAMETERS = 13_496  # (64 + 128 + 256 + 512) * 14 + 4 * 14


def _meta_model(variant: str, kernel: int, deep_supervision: bool, dim: str = "3d") -> MedNeXt:
    with torch.device("meta"):
        return create_mednext_v1(1, 14, variant, kernel, deep_supervision=deep_supervision, dim=dim)


@pytest.mark.parametrize(("variant", "kernel"), sorted(EXPECTED_PARAMETERS_DS))
def test_parameter_count_matches_paper_configuration(variant: str, kernel: int) -> None:
    with_ds = count_parameters(_meta_model(variant, kernel, True))
    without_ds = count_parameters(_meta_model(variant, kernel, False))
    assert with_ds == EXPECTED_PARAMETERS_DS[(variant, kernel)]
    assert with_ds - without_ds == DS_HEAD_PARAMETERS


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("kernel", KERNEL_SIZES)
def test_state_dict_layout_equals_official_v1(variant: str, kernel: int, fixtures_dir) -> None:
    """Keys, order and shapes hash equal to the official release's (tools/make_official_v1_fixture.py)."""
    official = json.loads((fixtures_dir / "official_v1_keys.json").read_text())[f"{variant}_k{kernel}"]
    state = _meta_model(variant, kernel, True).state_dict()
    lines = [f"{k}:{'x'.join(str(s) for s in v.shape)}" for k, v in state.items()]
    assert len(lines) == official["n_keys"]
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == official["sha256"]


def test_state_dict_lines_of_small_variant_readable_diff(fixtures_dir) -> None:
    official = json.loads((fixtures_dir / "official_v1_keys.json").read_text())["S_k3_lines"]
    state = _meta_model("S", 3, True).state_dict()
    assert [f"{k}:{'x'.join(str(s) for s in v.shape)}" for k, v in state.items()] == official


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("kernel", KERNEL_SIZES)
@pytest.mark.parametrize("dim", ["3d", "2d"])
def test_output_and_deep_supervision_shapes(variant: str, kernel: int, dim: str) -> None:
    spatial = (32, 16, 48) if dim == "3d" else (64, 32)
    net = _meta_model(variant, kernel, True, dim)
    x = torch.empty(2, 1, *spatial, device="meta")
    with torch.no_grad():
        outputs = net(x)
    assert isinstance(outputs, list) and len(outputs) == 5
    for level, out in enumerate(outputs):
        assert tuple(out.shape) == (2, 14, *(s // 2**level for s in spatial))
    net.do_ds = False
    with torch.no_grad():
        single = net(x)
    assert isinstance(single, torch.Tensor) and tuple(single.shape) == (2, 14, *spatial)


def test_deep_supervision_list_returned_in_eval_mode_too() -> None:
    """nnU-Net's validation_step runs in eval mode and needs the list (docs/sources.md#nnunet-deep-supervision)."""
    net = create_mednext_v1(1, 3, "S", 3, deep_supervision=True).eval()
    with torch.no_grad():
        outputs = net(torch.randn(1, 1, 32, 32, 32))
    assert isinstance(outputs, list) and len(outputs) == 5


def test_real_forward_values_are_finite_and_depend_on_input() -> None:
    net = create_mednext_v1(1, 3, "S", 3).eval()
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        a, b = net(x), net(x.flip(-1))
    assert torch.isfinite(a).all()
    assert not torch.allclose(a, b)


def test_variant_table_is_the_papers() -> None:
    """Table 1 (left): block counts B and expansion ratios R per stage."""
    assert VARIANTS["S"].exp_r == (2,) * 9 and VARIANTS["S"].block_counts == (2,) * 9
    assert VARIANTS["B"].exp_r == (2, 3, 4, 4, 4, 4, 4, 3, 2) and VARIANTS["B"].block_counts == (2,) * 9
    assert VARIANTS["M"].block_counts == (3, 4, 4, 4, 4, 4, 4, 4, 3)
    assert VARIANTS["L"].exp_r == VARIANTS["L"].block_counts == (3, 4, 8, 8, 8, 8, 8, 4, 3)
    assert sum(VARIANTS["L"].block_counts) + 8 == 62  # "62-MedNeXt-block architecture" (§2.4) incl. 8 resamplers
    assert [v.gradient_checkpointing for v in VARIANTS.values()] == [False, False, True, True]


def test_standard_resampling_ablation_drops_only_resampling_residuals() -> None:
    residual = _meta_model("B", 3, True)
    standard = create_mednext_v1(1, 14, "B", 3, deep_supervision=True, residual_resampling=False)
    extra = set(residual.state_dict()) - set(standard.state_dict())
    assert extra and all(".res_conv." in k and k.split(".")[0].startswith(("down_", "up_")) for k in extra)
    assert len(extra) == 16  # 8 resampling blocks x (weight, bias)
    assert set(standard.state_dict()) < set(residual.state_dict())


def test_bad_configuration_errors_are_clear() -> None:
    with pytest.raises(KeyError, match="unknown MedNeXt variant 'XL'"):
        create_mednext_v1(1, 2, "XL")
    with pytest.raises(ValueError, match="exp_r needs 9 per-stage values"):
        MedNeXt(1, 4, 2, exp_r=[2, 2], kernel_size=3)
    with pytest.raises(ValueError, match="checkpoint_style"):
        MedNeXt(1, 4, 2, kernel_size=3, checkpoint_style="inside_block")  # type: ignore[arg-type]
