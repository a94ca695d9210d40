"""Building blocks checked against independent computations (window attention, ResNet skips, UX block)."""

from __future__ import annotations

import torch

from baselines import nnformer, transunet, uxnet3d


def test_window_partition_and_merge_are_inverse_and_group_by_window() -> None:
    x = torch.arange(2 * 8 * 4 * 12 * 3, dtype=torch.float32).view(2, 8, 4, 12, 3)
    windows = nnformer._partition(x, 4)
    assert windows.shape == (2 * 2 * 1 * 3, 64, 3)
    # window 1 of batch 0 is x[0, 0:4, 0:4, 4:8] in raster order
    assert torch.equal(windows[1], x[0, 0:4, 0:4, 4:8].reshape(64, 3))
    assert torch.equal(nnformer._merge(windows, 4, (8, 4, 12)), x)


def test_shift_mask_blocks_exactly_the_tokens_from_different_regions() -> None:
    size, w, s = (8, 8, 8), 4, 2
    mask = nnformer._shift_mask(size, w, s)
    assert mask.shape == (8, 64, 64)
    # independent region labels after the cyclic shift: per axis 0 for [0, 4), 1 for [4, 6), 2 for [6, 8)
    band = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    region = band.view(8, 1, 1) * 9 + band.view(1, 8, 1) * 3 + band.view(1, 1, 8)
    flat = nnformer._partition(region.view(1, 8, 8, 8, 1).float(), w).squeeze(-1)
    expected = torch.where(flat.unsqueeze(1) != flat.unsqueeze(2), -100.0, 0.0)
    assert torch.equal(mask, expected)
    assert torch.equal(mask[0], torch.zeros(64, 64))  # the first window lies in one region


def test_relative_position_index_is_a_bijection_on_offsets() -> None:
    attn = nnformer.WindowAttention(dim=6, window=3, heads=2)
    index = attn.relative_position_index
    assert index.shape == (27, 27)
    assert sorted(index.unique().tolist()) == list(range(5**3))
    coords = torch.stack(torch.meshgrid(*[torch.arange(3)] * 3, indexing="ij")).flatten(1).T
    offsets = coords[:, None, :] - coords[None, :, :]
    same = (offsets[:, :, None, None, :] == offsets[None, None, :, :, :]).all(-1)
    # two token pairs share a bias entry exactly when their 3D offsets are equal
    assert torch.equal(index[:, :, None, None] == index[None, None, :, :], same)


def test_window_attention_with_one_window_matches_dense_attention() -> None:
    torch.manual_seed(1)
    dim, heads, w = 8, 2, 2
    attn = nnformer.WindowAttention(dim, w, heads)
    x = torch.randn(3, w**3, dim)
    q, k, v = attn.qkv(x).chunk(3, -1)
    out = torch.empty_like(x)
    for h in range(heads):
        sl = slice(h * dim // heads, (h + 1) * dim // heads)
        bias = attn.relative_position_bias_table[attn.relative_position_index.reshape(-1), h].view(w**3, w**3)
        a = (q[..., sl] @ k[..., sl].transpose(1, 2)) / (dim // heads) ** 0.5 + bias
        out[..., sl] = a.softmax(-1) @ v[..., sl]
    torch.testing.assert_close(attn(x, None), attn.proj(out))


def test_resnet_skips_have_reference_sizes_and_zero_padding() -> None:
    enc = transunet.ResNetEncoder(3).eval()
    with torch.no_grad():
        deep, skips = enc(torch.randn(1, 3, 64, 64))
    assert deep.shape == (1, 1024, 4, 4)
    assert [tuple(s.shape) for s in skips] == [(1, 512, 8, 8), (1, 256, 16, 16), (1, 64, 32, 32)]
    # the unpadded 3x3/2 max-pool gives 15x15 at 1/4; the skip is padded with zeros bottom/right
    assert torch.all(skips[1][..., 15, :] == 0) and torch.all(skips[1][..., :, 15] == 0)
    assert skips[1][..., :15, :15].abs().sum() > 0


def test_transunet_repeats_one_channel_to_rgb_stem() -> None:
    net = transunet.TransUNet(1, 2, img_size=32).eval()
    assert net.encoder.root[0].in_channels == 3
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(x.repeat(1, 3, 1, 1)))


def test_ux_block_starts_near_identity_and_uses_grouped_pointwise_convs() -> None:
    block = uxnet3d.UXBlock(8)
    assert block.expand.groups == 8 and block.compress.groups == 8
    assert block.expand.weight.shape == (32, 1, 1, 1, 1)
    x = torch.randn(1, 8, 6, 6, 6)
    y = block(x)
    assert (y - x).abs().max() < 1e-4  # layer scale 1e-6
