"""Hand-made tidy per-case frames (the columns of mednext.evaluation.results) for the statistics tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

COLUMNS = ["dataset", "network", "fold", "case", "class", "metric", "spacing_mode", "value", "tolerance_mm"]


def tidy(dataset: str, network: str, cases: Mapping[tuple[int, str], Mapping[str, float]], metric: str = "dsc",
         spacing_modes: Sequence[str] = ("paper", "physical")) -> pd.DataFrame:
    """Rows for ``cases``: (fold, case id) -> {region: value (fraction)}; the same values in every spacing mode."""
    rows = [[dataset, network, str(fold), case, region, metric, mode, value, 1.0]
            for (fold, case), regions in cases.items() for region, value in regions.items() for mode in spacing_modes]
    return pd.DataFrame(rows, columns=COLUMNS)
