"""Regenerate ``tests/fixtures/official_v1_*.{pt,json}`` from a checkout of the official MedNeXt code.

The official package is imported from ``--official-root`` (a folder holding ``nnunet_mednext``,
e.g. extracted from github.com/MIC-DKFZ/MedNeXt at 0b78ed8); nothing of it is copied here. The
fixtures hold only data produced by running it:

* ``official_v1_keys.json``: for each of the 8 paper variants (1 input channel, 14 classes, deep
  supervision on) the ordered state-dict keys and shapes, as a SHA-256 plus the full list for S-k3.
* ``official_v1_tiny.pt``: small 3D and 2D official networks (random weights, seed 0), an input
  and the official forward outputs (deep supervision on), to test numerical identity.

Usage: python tools/make_official_v1_fixture.py --official-root /path/to/extracted/official
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"

TINY_CONFIGS = {
    "3d": dict(in_channels=2, n_channels=4, n_classes=3, exp_r=[2, 3, 4, 4, 4, 4, 4, 3, 2], kernel_size=3,
               deep_supervision=True, do_res=True, do_res_up_down=True, block_counts=[1, 2, 1, 1, 2, 1, 1, 2, 1],
               dim="3d", input_shape=[2, 2, 16, 16, 32]),
    "3d_k5_plain": dict(in_channels=1, n_channels=4, n_classes=2, exp_r=2, kernel_size=5,
                        deep_supervision=True, do_res=True, do_res_up_down=False, block_counts=[1] * 9,
                        dim="3d", input_shape=[1, 1, 32, 16, 16]),
    "2d": dict(in_channels=1, n_channels=4, n_classes=3, exp_r=[3, 4, 8, 8, 8, 8, 8, 4, 3], kernel_size=5,
               deep_supervision=True, do_res=True, do_res_up_down=True, block_counts=[2, 1, 1, 1, 1, 1, 1, 1, 2],
               dim="2d", input_shape=[2, 1, 32, 48]),
}


def key_lines(state: dict[str, torch.Tensor]) -> list[str]:
    """``key:shape`` lines in state-dict order; the format the test recomputes."""
    return [f"{k}:{'x'.join(str(s) for s in v.shape)}" for k, v in state.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-root", type=Path, required=True)
    args = parser.parse_args()
    sys.path.insert(0, str(args.official_root))
    from nnunet_mednext.network_architecture.mednextv1.create_mednext_v1 import create_mednext_v1
    from nnunet_mednext.network_architecture.mednextv1.MedNextV1 import MedNeXt

    keys: dict[str, object] = {}
    for kernel in (3, 5):
        for variant in "SBML":
            with torch.device("meta"):
                net = create_mednext_v1(1, 14, variant, kernel, deep_supervision=True)
            lines = key_lines(net.state_dict())
            keys[f"{variant}_k{kernel}"] = {
                "sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest(),
                "n_keys": len(lines),
                "n_parameters": sum(p.numel() for p in net.parameters()),
            }
            if variant == "S" and kernel == 3:
                keys["S_k3_lines"] = lines
    (FIXTURES / "official_v1_keys.json").write_text(json.dumps(keys, indent=1) + "\n")

    tiny: dict[str, object] = {}
    for name, config in TINY_CONFIGS.items():
        config = dict(config)
        shape = config.pop("input_shape")
        torch.manual_seed(0)
        net = MedNeXt(**config).eval()
        # Non-trivial norm affine parameters, so a swapped weight/bias would show.
        with torch.no_grad():
            for module in net.modules():
                if isinstance(module, torch.nn.GroupNorm):
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.uniform_(-0.5, 0.5)
        x = torch.randn(*shape)
        with torch.no_grad():
            outputs = net(x)
        tiny[name] = {"config": config, "state_dict": net.state_dict(), "input": x, "outputs": list(outputs)}
    torch.save(tiny, FIXTURES / "official_v1_tiny.pt")
    print("wrote", FIXTURES / "official_v1_keys.json", FIXTURES / "official_v1_tiny.pt")


if __name__ == "__main__":
    main()
