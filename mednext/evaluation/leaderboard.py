"""Record the score a challenge leaderboard returned for a submitted test-set prediction.

The paper's test-set numbers (BTCV, AMOS22, KiTS19, BraTS21 leaderboards) can only come back from
the challenge servers; this keeps them as a tidy CSV (default ``paper_tables/leaderboard_scores.csv``)
next to the suite's own results.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from mednext.atomic import atomic_write_csv
from mednext.evaluation.io import EvaluationInputError

LEADERBOARD_COLUMNS = ["recorded_at", "dataset", "network", "split", "metric", "value", "submission", "note"]
DEFAULT_LEADERBOARD_CSV = Path("paper_tables/leaderboard_scores.csv")


def record_leaderboard_score(
    csv_path: str | Path,
    dataset: str,
    network: str,
    metric: str,
    value: float,
    split: str = "test",
    submission: str = "",
    note: str = "",
    recorded_at: str | None = None,
) -> pd.DataFrame:
    """Append one score to ``csv_path`` (created if absent; rewritten atomically) and return the table."""
    csv_path = Path(csv_path)
    for name, text in (("dataset", dataset), ("network", network), ("metric", metric)):
        if not str(text).strip():
            raise ValueError(f"{name} must not be empty")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"leaderboard value must be a finite number, got {value}")
    if csv_path.exists():
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
        if list(table.columns) != LEADERBOARD_COLUMNS:
            raise EvaluationInputError(f"{csv_path}: expected columns {LEADERBOARD_COLUMNS}, found {list(table.columns)}")
    else:
        table = pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    row = {
        "recorded_at": recorded_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": dataset, "network": network, "split": split, "metric": metric,
        "value": repr(value), "submission": submission, "note": note,
    }
    table = pd.concat([table, pd.DataFrame([row], columns=LEADERBOARD_COLUMNS)], ignore_index=True)
    atomic_write_csv(table, csv_path)
    return table
