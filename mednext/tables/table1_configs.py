"""Table 1 (left) / Supplementary 6.2: MedNeXt configurations with parameters and GFLOPs, reproduced beside reported."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from mednext.complexity import count_flops, count_parameters
from mednext.network import KERNEL_SIZES, VARIANTS, create_mednext_v1

N_CLASSES = 14  # BTCV: 13 organs + background, the setting the paper's counts fit (docs/sources.md#mednext-counts)
FLOPS_INPUT_SHAPE = (1, 1, 128, 128, 128)  # "GFLOPs" column of Supp. 6.2: one 128^3 patch

TITLE = "Table 1 (left): MedNeXt configurations, reproduced vs reported"
CAPTION = """\
Parameters count every tensor of the network built with 1 input channel, 14 classes and the 4
deep-supervision heads on (the paper trains with them), including the official release's 1-element
`dummy_tensor`; `params` is the exact count, `params_m` that count in millions rounded as the paper
prints it. GFLOPs are forward operations on one 1×1×128³ input without deep-supervision heads, in
fvcore's convention: one multiply-accumulate per conv weight and output voxel (per input voxel for
transposed convs) plus 5 operations per GroupNorm element; GELU, additions and padding are not
counted. `secs_per_train_epoch_reported` is the paper's timing (hardware not stated) and is not
reproduced here; see `benchmarks/bench_mednext.py`. The paper's S-k5 entry (5.9 M) disagrees with
the architecture it describes (5.99 M with or without deep supervision, so 6.0 M whichever way it is
rounded) and is flagged."""


def reproduce_configurations(n_classes: int = N_CLASSES) -> pd.DataFrame:
    """One row per variant and kernel: B, R, exact parameters, GFLOPs at 128^3."""
    rows = []
    for kernel in KERNEL_SIZES:
        for name, spec in VARIANTS.items():
            with torch.device("meta"):
                net = create_mednext_v1(1, n_classes, name, kernel, deep_supervision=True)
            flops = count_flops(lambda name=name, kernel=kernel: create_mednext_v1(1, n_classes, name, kernel), FLOPS_INPUT_SHAPE)
            rows.append(
                {
                    "variant": name,
                    "kernel": kernel,
                    "blocks": " ".join(map(str, spec.block_counts)),
                    "exp_ratios": " ".join(map(str, spec.exp_r)),
                    "channels": spec.n_channels,
                    "params": count_parameters(net),
                    "gflops": round(flops / 1e9, 2),
                }
            )
    return pd.DataFrame(rows)


def build_table1_configs(reported_csv: str | Path) -> pd.DataFrame:
    """Join the reproduced configurations with the paper's values and compare them."""
    reported = pd.read_csv(reported_csv)
    expected_columns = {"variant", "kernel", "params_m", "gflops", "secs_per_train_epoch"}
    if not expected_columns <= set(reported.columns):
        raise ValueError(f"{reported_csv}: expected columns {sorted(expected_columns)}, found {list(reported.columns)}")
    table = reproduce_configurations().merge(
        reported.rename(
            columns={"params_m": "params_m_reported", "gflops": "gflops_reported",
                     "secs_per_train_epoch": "secs_per_train_epoch_reported"}
        ),
        on=["variant", "kernel"],
        how="left",
        validate="one_to_one",
    )
    table.insert(table.columns.get_loc("params") + 1, "params_m", (table["params"] / 1e6).round(1))
    table["params_match"] = (table["params_m"] - table["params_m_reported"]).abs() < 0.05
    table["gflops_diff_pct"] = ((table["gflops"] / table["gflops_reported"] - 1) * 100).round(2)
    ordered = ["variant", "kernel", "blocks", "exp_ratios", "channels", "params", "params_m", "params_m_reported",
               "params_match", "gflops", "gflops_reported", "gflops_diff_pct", "secs_per_train_epoch_reported"]
    return table[ordered]
