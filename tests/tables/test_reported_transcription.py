"""The transcribed reported numbers equal the paper's text."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

#: The paper's plain text (arXiv:2303.09975) is not redistributed with the repository; the test machines
#: keep it beside the checkout.
PAPER = Path(__file__).resolve().parents[3] / "shared" / "paper" / "mednext_paper_text.txt"
NUMBER = r"(\d+\.\d\d)"


@pytest.fixture(scope="module")
def paper_text() -> str:
    if not PAPER.is_file():
        pytest.fail(f"paper text not found at {PAPER}: the MedNeXt paper (arXiv:2303.09975) as plain text, "
                    "expected beside the checkout")
    return PAPER.read_text()


def _row(text: str, label: str, n: int) -> list[float]:
    match = re.search(re.escape(label) + r"\s+" + r"\s+".join([NUMBER] * n), text)
    assert match, f"row {label!r} with {n} numbers not found in the paper text"
    return [float(v) for v in match.groups()]


# Table 2 row labels as printed; the kernel column is lost in the text, so the k3 block comes first
# ("MedNeXt-S kernel: 3 ...") and the k5 block after ("MedNeXt-S kernel: 5 ...").
TABLE2_LABELS = {
    "nnUNet": "nnUNet Baselines", "UNETR": "UNETR", "TransUNet": "TransUNet", "TransBTS": "TransBTS",
    "nnFormer": "nnFormer", "SwinUNETR": "SwinUNETR", "3D-UX-Net": "3D-UX-Net",
    "MedNeXt-S_k3": "MedNeXt-S kernel: 3", "MedNeXt-S_k5": "MedNeXt-S kernel: 5",
}


def test_table2_rows_equal_the_paper(paper_text: str, repo_root) -> None:
    reported = pd.read_csv(repo_root / "paper_tables/reported/table2.csv")
    order = [(d, m) for d in ("btcv", "amos22", "kits19", "brats21", "average") for m in ("DSC", "SDC")]
    table_text = paper_text[paper_text.index("nnUNet Baselines"):paper_text.index("val (bold)")]
    k5_text = table_text[table_text.index("MedNeXt-S kernel: 5"):]
    k3_text = table_text[:table_text.index("MedNeXt-S kernel: 5")]
    assert reported["network"].nunique() == 15 and len(reported) == 150
    for network, group in reported.groupby("network"):
        if network in TABLE2_LABELS:
            label, text = TABLE2_LABELS[network], table_text
        else:  # MedNeXt-B/M/L: "MedNeXt-B 84.01 ..." in the k3 block, again in the k5 block
            label = network.split("_")[0]
            text = k3_text if network.endswith("k3") else k5_text
        expected = _row(text, label, 10)
        values = group.set_index(["dataset", "metric"]).loc[order, "value"].tolist()
        assert values == expected, network


def test_ablation_rows_equal_the_paper(paper_text: str, repo_root) -> None:
    reported = pd.read_csv(repo_root / "paper_tables/reported/table1_ablations.csv")
    order = [(d, m) for d in ("btcv", "amos22") for m in ("DSC", "SDC")]
    labels = {
        "MedNeXt-B Resampling": "MedNeXt-B Resampling",
        "Standard Up and Downsampling": "Standard Up and Downsampling",
        "MedNeXt-B (k5) + UpKern": "+ UpKern",
        "MedNeXt-B (k5) from scratch": ") from scratch",
        "MedNeXt-B (k3) trained 2x": ") trained",
        "nnUNet (non-MedNeXt baseline)": "nnUNet (non-MedNeXt baseline)",
    }
    for row_label, group in reported.groupby("row_label"):
        for _, rows in group.groupby("ablation"):
            values = rows.set_index(["dataset", "metric"]).loc[order, "value"].tolist()
            assert values == _row(paper_text, labels[row_label], 4), row_label


def test_test_set_numbers_equal_the_paper(paper_text: str, repo_root) -> None:
    reported = pd.read_csv(repo_root / "paper_tables/reported/test_set.csv").set_index(["dataset", "metric"])["value"]
    quoted = {
        ("btcv", "DSC"): r"BTCV: .*?\(DSC: ([\d.]+), HD95: ([\d.]+)\)",
        ("amos22", "DSC"): r"AMOS22: .*?\(DSC: ([\d.]+), NSD: ([\d.]+)\)",
        ("kits19", "DSC"): r"KITS19: .*?\(DSC: ([\d.]+)\)",
        ("brats21", "DSC"): r"BraTS21: MedNeXt surpasses .*?\(DSC: ([\d.]+), HD95: ([\d.]+)\)",
    }
    second = {"btcv": "HD95", "amos22": "NSD", "brats21": "HD95"}
    for (dataset, metric), pattern in quoted.items():
        match = re.search(pattern, paper_text)
        assert match, pattern
        assert reported[(dataset, metric)] == float(match.group(1))
        if dataset in second:
            assert reported[(dataset, second[dataset])] == float(match.group(2))
    assert len(reported) == 7


def test_table1_configs_equal_the_supplementary_table(paper_text: str, repo_root) -> None:
    reported = pd.read_csv(repo_root / "paper_tables/reported/table1_configs.csv")
    for variant in "SBML":
        rows = reported[reported["variant"] == variant].set_index("kernel")
        pattern = (rf"{variant} (?:= 2 32 )?([\d.]+), ([\d.]+) (\d+), (\d+) (\d+), (\d+)")
        block = paper_text[paper_text.index("6.2 Detailed Model Configuration"):]
        match = re.search(pattern, block)
        assert match, variant
        p3, p5, g3, g5, s3, s5 = match.groups()
        assert (rows.loc[3, "params_m"], rows.loc[5, "params_m"]) == (float(p3), float(p5))
        assert (rows.loc[3, "gflops"], rows.loc[5, "gflops"]) == (int(g3), int(g5))
        assert (rows.loc[3, "secs_per_train_epoch"], rows.loc[5, "secs_per_train_epoch"]) == (int(s3), int(s5))
