"""Shared pytest settings: deterministic torch; modules marked ``starts_first`` are collected first."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures"


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the tests of ``starts_first`` modules (the SLURM demo, ~2/3 of the suite's wall time) first.

    ``make test`` runs two xdist workers with ``--dist loadscope --no-loadscope-reorder``: each module
    goes whole to one worker, in collection order, so the long module starts at once and the rest of
    the suite runs beside it instead of after it. Stable: the order is otherwise unchanged.
    """
    items.sort(key=lambda item: item.get_closest_marker("starts_first") is None)
