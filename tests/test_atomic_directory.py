"""``atomic_directory``: a folder appears whole or not at all (the conversion, synthetic, source-tree
and own-dataset builders all go through it)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mednext.atomic import atomic_directory


def test_a_failed_build_leaves_the_old_folder_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "Dataset001_X"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="half way"), atomic_directory(target) as tmp:
        (tmp / "new.txt").write_text("new")
        raise RuntimeError("half way")
    assert [p.name for p in tmp_path.iterdir()] == ["Dataset001_X"]
    assert [p.name for p in target.iterdir()] == ["old.txt"]


def test_a_finished_build_replaces_the_folder_readable_by_others(tmp_path: Path) -> None:
    target = tmp_path / "raw" / "Dataset001_X"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("old")
    with atomic_directory(target) as tmp:
        assert tmp.parent == target.parent and not any(tmp.iterdir())
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in target.parent.iterdir()] == ["Dataset001_X"]
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
