"""Fixed 5-fold cross-validation splits written as nnU-Net's ``splits_final.json``.

Paper §3 / official MedNeXt ``nnUNetTrainerV2.do_split``: ``KFold(5, shuffle=True,
random_state=12345)`` over the *sorted* case identifiers; fold i trains on the other four folds.
Writing the file before training fixes the folds, so every model of a dataset sees the same split.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from sklearn.model_selection import KFold

from mednext.atomic import atomic_write_text
from mednext.vocabulary import N_FOLDS

SPLIT_SEED = 12345
_FILE_ENDING = ".nii.gz"


def kfold_splits(case_ids: Sequence[str], n_folds: int = N_FOLDS, seed: int = SPLIT_SEED) -> list[dict[str, list[str]]]:
    """Folds as ``[{"train": [...], "val": [...]}, ...]`` over the sorted, de-duplicated ``case_ids``."""
    ids = sorted(set(case_ids))
    if len(ids) != len(case_ids):
        raise ValueError(f"case ids must be unique; found {len(case_ids) - len(ids)} duplicates")
    if len(ids) < n_folds:
        raise ValueError(f"{n_folds}-fold cross-validation needs at least {n_folds} cases, found {len(ids)}")
    folds = []
    for train_idx, val_idx in KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(ids):
        folds.append({"train": [ids[i] for i in train_idx], "val": [ids[i] for i in val_idx]})
    return folds


def case_ids_from_raw(raw_dataset_dir: Path) -> list[str]:
    """Sorted training case ids of an nnU-Net raw dataset folder (one per ``labelsTr`` file)."""
    labels = Path(raw_dataset_dir) / "labelsTr"
    if not labels.is_dir():
        raise FileNotFoundError(f"expected a labelsTr folder in the nnU-Net raw dataset {raw_dataset_dir}, found none")
    ids = sorted(p.name[: -len(_FILE_ENDING)] for p in labels.iterdir() if p.name.endswith(_FILE_ENDING))
    if not ids:
        raise FileNotFoundError(f"expected *{_FILE_ENDING} label files in {labels}, found none")
    return ids


def _case_ids_from_preprocessed(preprocessed_dataset_dir: Path) -> list[str]:
    """Case ids from ``gt_segmentations`` that nnU-Net's preprocessing writes."""
    gt = preprocessed_dataset_dir / "gt_segmentations"
    ids = sorted(p.name[: -len(_FILE_ENDING)] for p in gt.glob(f"*{_FILE_ENDING}")) if gt.is_dir() else []
    if not ids:
        raise FileNotFoundError(
            f"no case ids given and no {gt}/*{_FILE_ENDING} found; pass case_ids (e.g. case_ids_from_raw(raw_dir))"
        )
    return ids


def write_splits_final(
    preprocessed_dataset_dir: Path,
    case_ids: Sequence[str] | None = None,
    n_folds: int = N_FOLDS,
    seed: int = SPLIT_SEED,
) -> Path:
    """Write ``preprocessed_dataset_dir/splits_final.json`` and return its path.

    ``preprocessed_dataset_dir`` is ``$nnUNet_preprocessed/DatasetXXX_Name``; it is created if missing.
    Without ``case_ids`` the ids are read from its ``gt_segmentations`` folder. The file is written
    to a temporary name and renamed, so a reader never sees half a file.
    """
    out_dir = Path(preprocessed_dataset_dir)
    ids = list(case_ids) if case_ids is not None else _case_ids_from_preprocessed(out_dir)
    folds = kfold_splits(ids, n_folds=n_folds, seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "splits_final.json"
    return atomic_write_text(target, json.dumps(folds, indent=2) + "\n")


def read_splits_final(path: Path) -> list[dict[str, list[str]]]:
    """Load a ``splits_final.json`` and check each fold has disjoint train/val lists."""
    folds = json.loads(Path(path).read_text())
    for i, fold in enumerate(folds):
        overlap = set(fold["train"]) & set(fold["val"])
        if overlap:
            raise ValueError(f"fold {i} of {path} has cases in both train and val: {sorted(overlap)[:5]}")
    return folds


def fold_validation_cases(path: Path, fold: int | str) -> list[str]:
    """Validation case ids of ``fold`` in ``splits_final.json``; ValueError naming the file otherwise."""
    folds = read_splits_final(path)
    if not str(fold).isdigit() or int(fold) >= len(folds):
        raise ValueError(f"{path} has folds 0-{len(folds) - 1}; fold {fold!r} is not one of them")
    return list(folds[int(fold)]["val"])


__all__ = ["N_FOLDS", "SPLIT_SEED", "case_ids_from_raw", "fold_validation_cases", "kfold_splits", "read_splits_final",
           "write_splits_final"]
