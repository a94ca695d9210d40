"""provenance.csv from hand-made run folders: one row per (dataset, network, fold), keyed
to its table row, training facts from the embedded training record, clear errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from mednext.cli import build_parser
from mednext.tables.provenance_table import COLUMNS, provenance_table


def _run(commit: str, continues: int) -> list[dict]:
    runs = [{"action": "fresh", "status": "ok", "started": "2026-11-30T10:00:00Z", "finished": "2026-11-30T11:00:00Z",
             "wall_s": 3600.0, "git_commit": commit}]
    runs += [{"action": "continue", "status": "ok", "started": f"2026-11-30T1{2 + i}:00:00Z",
              "finished": f"2026-11-30T1{2 + i}:30:00Z", "wall_s": 1800.0, "git_commit": "c" * 40} for i in range(continues)]
    return runs


def _write(results: Path, dataset: str, network: str, fold: int, training: dict | None, gpus: list[str]) -> Path:
    """A run folder as the evaluate command leaves it: metrics.csv and provenance.json (written by hand)."""
    folder = results / dataset / network / f"fold_{fold}"
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text("case,value\n")
    if training is not None:
        training = {**training, "gpus": gpus}
    record = {"kind": "evaluation", "dataset": dataset, "network": network, "fold": str(fold),
              "git": {"commit": "e" * 40, "dirty": False}, "config_hash": "cfg-eval", "recipe_hash": "r1",
              "packages": {"python": "3.11.7", "torch": "9.9"}, "finished": "2026-11-30T15:00:00Z", "training": training}
    (folder / "provenance.json").write_text(json.dumps(record))
    return folder


def _training(commit: str, continues: int) -> dict:
    runs = _run(commit, continues)
    return {"kind": "training", "git": {"commit": runs[-1]["git_commit"], "dirty": True}, "config_hash": "cfg-train",
            "packages": {"python": "3.11.7", "torch": "2.14.1", "nnunetv2": "2.8.1", "cuda": "12.4", "cudnn": "90100"},
            "host": "gpu-node-7", "epochs_completed": 1000, "resumes": continues, "wall_s": 3600.0 + 1800.0 * continues,
            "started": runs[0]["started"], "finished": runs[-1]["finished"], "runs": runs}


def test_rows_keys_and_training_facts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    results = tmp_path / "results"
    folders = [
        _write(results, "btcv", "nnUNet", 1, _training("a" * 40, 0), ["NVIDIA A100-SXM4-40GB"]),
        _write(results, "btcv", "MedNeXt-B_k5", 0, _training("a" * 40, 2), ["NVIDIA A100-SXM4-40GB", "NVIDIA A100-SXM4-40GB"]),
        _write(results, "btcv", "nnUNet", 0, _training("b" * 40, 0), []),
    ]
    legacy = results / "amos22" / "nnUNet" / "fold_0"  # evaluated before provenance existed
    legacy.mkdir(parents=True)
    (legacy / "metrics.csv").write_text("case,value\n")
    out = tmp_path / "generated" / "provenance.csv"
    args = build_parser().parse_args(["provenance", *map(str, folders), str(legacy / "metrics.csv"), "--out", str(out)])
    with caplog.at_level(logging.WARNING):
        assert args.func(args) == 0
    assert "amos22/nnUNet/fold_0" in caplog.text and "no provenance.json" in caplog.text

    table = pd.read_csv(out)
    assert list(table.columns) == list(COLUMNS)
    assert list(zip(table["dataset"], table["network"], table["fold"])) == [
        ("amos22", "nnUNet", 0), ("btcv", "MedNeXt-B_k5", 0), ("btcv", "nnUNet", 0), ("btcv", "nnUNet", 1)]
    assert list(table["provenance_key"]) == ["amos22/nnUNet", "btcv/MedNeXt-B_k5", "btcv/nnUNet", "btcv/nnUNet"]
    legacy_row, upkern, nn0, nn1 = (table.iloc[i] for i in range(4))
    assert legacy_row[["git_commit", "torch", "resumes", "gpu"]].isna().all()
    assert upkern["resumes"] == 2 and upkern["train_wall_s"] == 7200.0 and upkern["epochs_completed"] == 1000
    assert upkern["train_commits"] == ";".join(["a" * 40, "c" * 40])  # resumed on another commit: both named
    assert upkern["gpu"] == "NVIDIA A100-SXM4-40GB; NVIDIA A100-SXM4-40GB" and nn0["gpu"] == "none"
    assert upkern["torch"] == "2.14.1" and upkern["cudnn"] == 90100  # the training's packages, not the evaluation's
    assert upkern["config_hash"] == "cfg-train" and upkern["eval_config_hash"] == "cfg-eval"
    assert upkern["eval_git_commit"] == "e" * 40 and upkern["recipe_hash"] == "r1"
    assert upkern["started"] == "2026-11-30T10:00:00Z" and upkern["finished"] == "2026-11-30T13:30:00Z"
    assert nn0["git_commit"] == "b" * 40 and nn1["git_commit"] == "a" * 40  # the row btcv/nnUNet mixes commits
    assert table.groupby("provenance_key")["git_commit"].nunique().to_dict() == {
        "amos22/nnUNet": 0, "btcv/MedNeXt-B_k5": 1, "btcv/nnUNet": 2}


def test_unreadable_record_is_one_error_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "results" / "btcv" / "nnUNet" / "fold_0"
    folder.mkdir(parents=True)
    (folder / "provenance.json").write_text('{"kind": "evaluation",')
    out = tmp_path / "provenance.csv"
    args = build_parser().parse_args(["provenance", str(folder), "--out", str(out)])
    with pytest.raises(SystemExit, match=r"fold_0/provenance.json: not a readable provenance file"):
        args.func(args)
    assert not out.exists()


def test_no_runs_gives_an_empty_table_with_the_columns() -> None:
    assert list(provenance_table([]).columns) == list(COLUMNS)
