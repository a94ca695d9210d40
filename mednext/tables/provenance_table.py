"""``provenance.csv``: one row per (dataset, network, fold) behind the tables, from each run's provenance.

Every reproduced number can name its origin. The evaluation writes ``provenance.json`` beside
each ``results/<dataset>/<network>/fold_<F>/metrics.csv`` with the training's record embedded; this
table flattens those records. ``provenance_key`` = ``<dataset>/<network>`` is the key a table row
(one dataset and network, all folds) shares with its folds' rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from mednext.atomic import atomic_write_csv
from mednext.provenance import PROVENANCE_FILE, read_provenance

log = logging.getLogger(__name__)

#: Package versions copied into the table (the training's when there is one).
PACKAGE_COLUMNS: tuple[str, ...] = ("python", "torch", "cuda", "cudnn", "nnunetv2", "monai", "snakemake")
COLUMNS: tuple[str, ...] = (
    "dataset", "network", "fold", "provenance_key", "git_commit", "git_dirty", "train_commits", "config_hash",
    "config_file_hash", "recipe_hash", *PACKAGE_COLUMNS, "host", "gpu", "epochs_completed", "resumes",
    "train_wall_s", "started", "finished", "eval_git_commit", "eval_git_dirty", "eval_config_hash", "evaluated",
)


def provenance_key(dataset: str, network: str) -> str:
    """The key shared by a table row and its folds' provenance rows."""
    return f"{dataset}/{network}"


def run_folder(path: str | Path) -> Path:
    """The run folder (``results/<dataset>/<network>/fold_<F>``) of a folder or of a file inside it."""
    path = Path(path)
    return path.parent if path.suffix else path


def _identity_from_folder(folder: Path) -> dict[str, Any]:
    fold = folder.name.removeprefix("fold_")
    return {"dataset": folder.parent.parent.name, "network": folder.parent.name,
            "fold": int(fold) if fold.isdigit() else fold}


def provenance_row(record: Mapping[str, Any] | None, folder: Path) -> dict[str, Any]:
    """One table row from an evaluation record (training fields from its embedded ``training`` record)."""
    if record is None:
        identity = _identity_from_folder(folder)
        return {**dict.fromkeys(COLUMNS), **identity, "provenance_key": provenance_key(identity["dataset"], identity["network"])}
    training: Mapping[str, Any] = record.get("training") or {}
    fold = record.get("fold")
    fold = int(fold) if isinstance(fold, str) and fold.isdigit() else fold
    packages = training.get("packages") or record.get("packages") or {}
    train_git = training.get("git") or {}
    eval_git = record.get("git") or {}
    commits = sorted({r.get("git_commit") for r in training.get("runs", []) if r.get("git_commit")})
    gpus = training.get("gpus") if training else None
    row: dict[str, Any] = {
        "dataset": record.get("dataset"), "network": record.get("network"), "fold": fold,
        "provenance_key": provenance_key(str(record.get("dataset")), str(record.get("network"))),
        "git_commit": train_git.get("commit"), "git_dirty": train_git.get("dirty"),
        "train_commits": ";".join(commits) or None,
        "config_hash": training.get("config_hash") or record.get("config_hash"),
        "config_file_hash": training.get("config_file_hash") or record.get("config_file_hash"),
        "recipe_hash": record.get("recipe_hash") or training.get("recipe_hash"),
        **{name: packages.get(name) for name in PACKAGE_COLUMNS},
        "host": training.get("host"), "gpu": None if gpus is None else ("; ".join(gpus) or "none"),
        "epochs_completed": training.get("epochs_completed"), "resumes": training.get("resumes"),
        "train_wall_s": training.get("wall_s"), "started": training.get("started"), "finished": training.get("finished"),
        "eval_git_commit": eval_git.get("commit"), "eval_git_dirty": eval_git.get("dirty"),
        "eval_config_hash": record.get("config_hash"), "evaluated": record.get("finished"),
    }
    return row


def provenance_table(paths: Iterable[str | Path]) -> pd.DataFrame:
    """The table for the given run folders (or files in them), sorted by dataset, network, fold.

    A folder without ``provenance.json`` (metrics from before provenance existed) gives a row with
    only its identity, and a warning naming the folder.
    """
    rows = []
    for path in paths:
        folder = run_folder(path)
        record = read_provenance(folder / PROVENANCE_FILE)
        if record is None:
            log.warning("%s: no %s; its row has only dataset, network and fold", folder, PROVENANCE_FILE)
        rows.append(provenance_row(record, folder))
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    if table.empty:
        return table
    table["_fold"] = table["fold"].astype(str)
    return table.sort_values(["dataset", "network", "_fold"], kind="stable").drop(columns="_fold").reset_index(drop=True)


def write_provenance_table(paths: Iterable[str | Path], out: str | Path) -> Path:
    """Write :func:`provenance_table` as tidy CSV, atomically."""
    return atomic_write_csv(provenance_table(paths), out)
