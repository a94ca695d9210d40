"""Compare a recipe card with the official code's values; every difference must be a listed deviation.

Tables (``paper_tables/reported/``):

- ``official_recipe.csv`` (item, network_family, value, official_file, note): the official value of
  each card item, per *selector*;
- ``deviations.csv`` (item, network_family, ours, official, reason, expected_effect): the differences
  this project accepts, with reason and expected effect (DEVIATIONS.md points here).

A selector is ``all``, a family (``mednext`` also covers the ablations, ``nnunet``, ``baseline``) or
a network-name glob (``MedNeXt-[ML]_*``), optionally restricted to a dataset key with ``@kits19``.
The most specific matching row wins (dataset-restricted > name > family > all).

Values are JSON (``1e-4``, ``true``, ``null``, ``[128, 128, 128]``), plain words (``AdamW``) or
ratios ``16:8:4:2:1`` (compared normalised to sum 1). Every value is the official code's own, written
out per dataset where it depends on the dataset (``batch_dice`` for ``all@btcv`` ... ``all@brats21``):
the comparison never computes an expected value with the project's code.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

OFFICIAL_COLUMNS = ["item", "network_family", "value", "official_file", "note"]
DEVIATION_COLUMNS = ["item", "network_family", "ours", "official", "reason", "expected_effect"]
FAMILY_SELECTORS: dict[str, frozenset[str]] = {
    "mednext": frozenset({"mednext", "ablation"}),
    "ablation": frozenset({"ablation"}),
    "nnunet": frozenset({"nnunet"}),
    "baseline": frozenset({"baseline"}),
}
_RATIO = re.compile(r"^\d+(?::\d+)+$")


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing} (expected {columns})")
    empty = frame[(frame["item"] == "") | (frame["network_family"] == "")]
    if len(empty):
        raise ValueError(f"{path}: rows {list(empty.index + 2)} have an empty item or network_family")
    return frame


def load_official(path: str | Path) -> pd.DataFrame:
    """``official_recipe.csv``; ValueError naming the file for missing columns or duplicate keys."""
    frame = _read(Path(path), OFFICIAL_COLUMNS)
    duplicated = frame[frame.duplicated(["item", "network_family"], keep=False)]
    if len(duplicated):
        raise ValueError(f"{path}: duplicate (item, network_family) rows: "
                         f"{duplicated[['item', 'network_family']].values.tolist()}")
    return frame


def load_deviations(path: str | Path) -> pd.DataFrame:
    """``deviations.csv``; every row needs a reason and an expected effect."""
    frame = _read(Path(path), DEVIATION_COLUMNS)
    vague = frame[(frame["reason"].str.strip() == "") | (frame["expected_effect"].str.strip() == "")]
    if len(vague):
        raise ValueError(f"{path}: rows {list(vague.index + 2)} lack a reason or an expected effect")
    return frame


def specificity(selector: str, network: str, family: str, dataset: str | None) -> int | None:
    """How specifically ``selector`` names this (network, family, dataset); None if it does not apply."""
    base, _, restricted = selector.partition("@")
    score = 0
    if restricted:
        if dataset is None or restricted.lower() != dataset.lower():
            return None
        score += 10
    if base == "all":
        return score
    if base in FAMILY_SELECTORS:
        return score + 1 if family in FAMILY_SELECTORS[base] else None
    return score + 2 if fnmatch.fnmatchcase(network, base) else None


def select(frame: pd.DataFrame, item: str, network: str, family: str, dataset: str | None) -> pd.Series | None:
    """The most specific row of ``frame`` for ``item``; ValueError if two rows tie."""
    scored = []
    for row in _rows_of(frame).get(item, ()):
        score = specificity(row["network_family"], network, family, dataset)
        if score is not None:
            scored.append((score, row))
    if not scored:
        return None
    best = max(score for score, _ in scored)
    top = [row for score, row in scored if score == best]
    if len(top) > 1:
        raise ValueError(f"item {item!r}: selectors {[r['network_family'] for r in top]} tie for {network}")
    return top[0]


def _rows_of(frame: pd.DataFrame) -> dict[str, list[pd.Series]]:
    """``frame``'s rows grouped by item (kept on the frame: a card has ~70 items, a test compares ~70 cards)."""
    grouped = frame.attrs.get("_rows_by_item")
    if grouped is None:
        grouped = {}
        for _, row in frame.iterrows():
            grouped.setdefault(row["item"], []).append(row)
        frame.attrs["_rows_by_item"] = grouped
    return grouped


def parse_value(text: str) -> Any:
    """A table cell as a Python value (see the module docstring)."""
    text = str(text).strip()
    if _RATIO.match(text):
        parts = [float(p) for p in text.split(":")]
        return [p / sum(parts) for p in parts]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def values_equal(ours: Any, official: Any) -> bool:
    """Equality with a relative tolerance for numbers (bools are not numbers here)."""
    if isinstance(ours, bool) or isinstance(official, bool):
        return isinstance(ours, bool) and isinstance(official, bool) and ours == official
    if isinstance(ours, (int, float)) and isinstance(official, (int, float)):
        return math.isclose(float(ours), float(official), rel_tol=1e-6, abs_tol=1e-12)
    if isinstance(ours, (list, tuple)) and isinstance(official, (list, tuple)):
        return len(ours) == len(official) and all(values_equal(a, b) for a, b in zip(ours, official))
    return ours == official


@dataclass(frozen=True)
class Difference:
    """One card item that differs from the official value."""

    network: str
    item: str
    ours: Any
    official: Any
    listed: bool

    def __str__(self) -> str:
        state = "listed" if self.listed else "NOT listed in deviations.csv"
        return f"{self.network}: {self.item} = {self.ours!r}, official {self.official!r} ({state})"


def compare_card(
    card: Mapping[str, Any],
    official: pd.DataFrame,
    deviations: pd.DataFrame,
    items: tuple[str, ...],
    dataset: str | None = None,
) -> tuple[list[Difference], list[str], set[int]]:
    """Differences of ``card`` from ``official`` for ``items``.

    Returns the differences (``listed`` when a deviation row matches network, item, ours and
    official), the items without an official row, and the indices of the deviation rows used.
    """
    network, family = str(card["network"]), str(card["network_family"])
    differences: list[Difference] = []
    unknown: list[str] = []
    used: set[int] = set()
    for item in items:
        row = select(official, item, network, family, dataset)
        if row is None:
            unknown.append(item)
            continue
        expected = parse_value(row["value"])
        ours = card.get(item)
        if values_equal(ours, expected):
            continue
        deviation = select(deviations, item, network, family, dataset)
        listed = (
            deviation is not None
            and values_equal(ours, parse_value(deviation["ours"]))
            and values_equal(expected, parse_value(deviation["official"]))
        )
        if listed:
            used.add(int(deviation.name))
        differences.append(Difference(network, item, ours, expected, listed))
    return differences, unknown, used
