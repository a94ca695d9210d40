"""splits_final.json: KFold(5, shuffle, 12345) over sorted ids, as nnU-Net's trainer would create it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nnunetv2.utilities.crossval_split import generate_crossval_split

from mednext.data.splits import case_ids_from_raw, fold_validation_cases, kfold_splits, read_splits_final, write_splits_final
from mednext.data.synthetic import write_synthetic_dataset


def test_matches_nnunet_reference_split_on_shuffled_input(tmp_path: Path) -> None:
    ids = [f"case_{i:05d}" for i in range(23)]
    shuffled = ids[7:] + ids[:7]
    path = write_splits_final(tmp_path / "Dataset040_KiTS19", shuffled)
    assert path == tmp_path / "Dataset040_KiTS19" / "splits_final.json"
    folds = json.loads(path.read_text())
    reference = generate_crossval_split(sorted(ids), seed=12345, n_splits=5)
    assert folds == [{"train": [str(k) for k in f["train"]], "val": [str(k) for k in f["val"]]} for f in reference]
    assert len(folds) == 5
    all_val = [k for f in folds for k in f["val"]]
    assert sorted(all_val) == ids  # every case validated exactly once
    assert [len(f["val"]) for f in folds] == [5, 5, 5, 4, 4]
    assert read_splits_final(path) == folds
    assert [p.name for p in path.parent.iterdir()] == ["splits_final.json"]


def test_seed_changes_folds_and_duplicates_or_too_few_cases_fail(tmp_path: Path) -> None:
    ids = [f"c{i:02d}" for i in range(10)]
    assert kfold_splits(ids) != kfold_splits(ids, seed=1)
    with pytest.raises(ValueError, match="unique"):
        kfold_splits(ids + ["c00"])
    with pytest.raises(ValueError, match="at least 5 cases, found 4"):
        write_splits_final(tmp_path / "x", ids[:4])
    assert not (tmp_path / "x").exists()


def test_ids_from_raw_and_from_preprocessed_gt(tmp_path: Path) -> None:
    raw = write_synthetic_dataset(tmp_path / "raw", n_cases=6)
    ids = case_ids_from_raw(raw)
    assert ids == [f"synth_{i:03d}" for i in range(6)]
    pre = tmp_path / "pre" / raw.name
    (pre / "gt_segmentations").mkdir(parents=True)
    for i in ids:
        (pre / "gt_segmentations" / f"{i}.nii.gz").write_bytes(b"")
    assert json.loads(write_splits_final(pre).read_text()) == kfold_splits(ids)
    with pytest.raises(FileNotFoundError, match="no case ids given"):
        write_splits_final(tmp_path / "empty")


def test_fold_validation_cases_and_a_fold_outside_the_file(tmp_path: Path) -> None:
    path = write_splits_final(tmp_path, case_ids=[f"c{i}" for i in range(10)])
    folds = read_splits_final(path)
    assert fold_validation_cases(path, 3) == folds[3]["val"] and fold_validation_cases(path, "3") == folds[3]["val"]
    for bad in (5, "all", -1):
        with pytest.raises(ValueError, match=r"has folds 0-4; fold .* is not one of them"):
            fold_validation_cases(path, bad)
