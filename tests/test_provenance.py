"""Provenance records: fields against independent sources, atomic writes, resume counting
through the real train command's decision, and scrubbing of planted tokens and home paths."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from mednext import provenance as prov


def main(argv: list[str]) -> int:
    """The CLI's ``train`` and ``evaluate`` commands only (importing every command costs seconds)."""
    import argparse

    from mednext.commands import evaluate, train

    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers(dest="command", required=True)
    train.register(subparsers)
    evaluate.register(subparsers)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


TOKEN = "planted-secret-value-123"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A fresh git repository with one commit."""
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    (root / "a.txt").write_text("a\n")
    _git(root, "add", "a.txt")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    return root


def _nnunet_checkpoint(path: Path, current_epoch: int) -> None:
    """What nnU-Net v2's save_checkpoint writes (the keys our reader needs), small."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"network_weights": {"w": torch.zeros(1)}, "current_epoch": current_epoch,
                "_best_ema": np.float64(0.5)}, path)


# -- single facts --------------------------------------------------------------------------------
def test_git_state_commit_dirty_and_not_a_repo(repo: Path, tmp_path: Path) -> None:
    assert prov.git_state(repo) == {"commit": _git(repo, "rev-parse", "HEAD"), "dirty": False}
    (repo / "a.txt").write_text("changed\n")
    assert prov.git_state(repo)["dirty"] is True
    (tmp_path / "plain").mkdir()
    assert prov.git_state(tmp_path / "plain") == {"commit": None, "dirty": None}
    (repo / "sub").mkdir()  # inside a repository but not its top: not "our" repository
    assert prov.git_state(repo / "sub") == {"commit": None, "dirty": None}


def test_package_versions_and_machine() -> None:
    versions = prov.package_versions()
    assert versions["python"] == ".".join(map(str, sys.version_info[:3])) == platform.python_version()
    assert versions["torch"] == torch.__version__.split("+")[0] or versions["torch"] == torch.__version__
    assert versions["cuda"] == (torch.version.cuda if torch.cuda.is_available() else None)
    import nnunetv2  # noqa: F401  (installed: its version must be known)
    assert versions["nnunetv2"] and versions["monai"] and versions["snakemake"]
    facts = prov.machine()
    assert facts["host"] == socket.gethostname()
    assert facts["gpus"] == ([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
                             if torch.cuda.is_available() else [])


def test_epochs_completed_is_the_largest_checkpoint_epoch(tmp_path: Path) -> None:
    fold = tmp_path / "fold_0"
    fold.mkdir()
    assert prov.epochs_completed(fold) is None
    _nnunet_checkpoint(fold / "checkpoint_best.pth", 3)  # best from epoch 3, latest written after epoch 5
    _nnunet_checkpoint(fold / "checkpoint_latest.pth", 5)
    assert prov.epochs_completed(fold) == 5
    (fold / "checkpoint_final.pth").write_bytes(b"truncated")
    with pytest.raises(prov.ProvenanceError, match="checkpoint_final.pth"):
        prov.epochs_completed(fold)


def test_recipe_hash_is_of_the_canonical_json(tmp_path: Path) -> None:
    assert prov.recipe_hash(tmp_path) is None
    (tmp_path / "recipe.json").write_text('{"lr": 0.0001, "optimizer": "AdamW"}')
    first = prov.recipe_hash(tmp_path)
    (tmp_path / "recipe.json").write_text('{\n  "optimizer": "AdamW",\n  "lr": 1e-4\n}\n')  # same card, other layout
    assert prov.recipe_hash(tmp_path) == first
    (tmp_path / "recipe.json").write_text('{"lr": 0.001, "optimizer": "AdamW"}')
    assert prov.recipe_hash(tmp_path) != first
    import hashlib
    assert first == hashlib.sha256(b'{"lr":0.0001,"optimizer":"AdamW"}').hexdigest()


def test_config_env_hashes_reach_the_record(tmp_path: Path) -> None:
    config_file = tmp_path / "c.yaml"
    config_file.write_text("folds: [0]\n")
    env = prov.config_env({"folds": [0], "paths": {"results": "r"}}, config_file)
    import hashlib
    assert env[prov.ENV_CONFIG_FILE_SHA256] == hashlib.sha256(b"folds: [0]\n").hexdigest()
    assert env == prov.config_env({"paths": {"results": "r"}, "folds": [0]}, config_file)  # key order irrelevant
    assert env != prov.config_env({"folds": [1], "paths": {"results": "r"}}, config_file)
    assert prov.config_hashes(env) == {"config_hash": env[prov.ENV_CONFIG_SHA256],
                                       "config_file_hash": env[prov.ENV_CONFIG_FILE_SHA256]}


# -- atomic writes ---------------------------------------------------------------------------------
def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "provenance.json"
    prov.write_provenance(target, {"kind": "training", "n": 1})

    def crash(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        prov.write_provenance(target, {"kind": "training", "n": 2})
    assert json.loads(target.read_text()) == {"kind": "training", "n": 1}  # old record intact
    assert [p.name for p in tmp_path.iterdir()] == ["provenance.json"]  # no temp file left


def test_unreadable_record_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "provenance.json").write_text("{not json")
    with pytest.raises(prov.ProvenanceError, match="provenance.json"):
        prov.read_provenance(tmp_path / "provenance.json")


# -- runs and resumes --------------------------------------------------------------------------------
def test_runs_resumes_and_a_fresh_start(tmp_path: Path, repo: Path) -> None:
    fold = tmp_path / "fold_0"
    ident, job = {"network": "MedNeXt-S_k3", "fold": 0}, {"epochs": 10}
    killed = prov.TrainingProvenance(fold, ident, job, repo=repo)
    killed.begin("fresh")  # the job is killed (SLURM time limit): end() never runs
    first_start = json.loads((fold / "provenance.json").read_text())["started"]
    _nnunet_checkpoint(fold / "checkpoint_latest.pth", 4)
    with pytest.raises(RuntimeError):
        with prov.training_provenance(fold, "continue", ident, job, repo=repo):
            raise RuntimeError("CUDA out of memory")
    with prov.training_provenance(fold, "continue", ident, job, repo=repo):
        _nnunet_checkpoint(fold / "checkpoint_final.pth", 10)
    with prov.training_provenance(fold, "validate", ident, job, repo=repo):
        pass
    with prov.training_provenance(fold, "done", ident, job, repo=repo):  # nothing ran: nothing recorded
        pass
    record = json.loads((fold / "provenance.json").read_text())
    assert [(r["action"], r["status"]) for r in record["runs"]] == [
        ("fresh", "interrupted"), ("continue", "failed"), ("continue", "ok"), ("validate", "ok")]
    assert record["resumes"] == 2 and record["started"] == first_start
    assert record["finished"] == record["runs"][-1]["finished"]
    assert record["epochs_completed"] == 10
    assert record["git"]["commit"] == _git(repo, "rev-parse", "HEAD")
    assert record["wall_s"] == pytest.approx(sum(r["wall_s"] or 0 for r in record["runs"]), abs=1e-3)
    started, finished = prov.parse_iso(record["started"]), prov.parse_iso(record["finished"])
    assert timedelta(0) <= finished - started < timedelta(minutes=5)

    (fold / "provenance.json").write_text("{truncated")  # unreadable: the run still goes ahead, new record
    with prov.training_provenance(fold, "continue", ident, job, repo=repo):
        pass
    record = json.loads((fold / "provenance.json").read_text())
    assert [r["action"] for r in record["runs"]] == ["continue"] and record["resumes"] == 1

    with prov.training_provenance(fold, "fresh", ident, job, repo=repo):  # retrained from scratch
        pass
    record = json.loads((fold / "provenance.json").read_text())
    assert len(record["runs"]) == 1 and record["resumes"] == 0


@pytest.fixture()
def nnunet_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    results = tmp_path / "nnUNet_results"
    monkeypatch.setenv("nnUNet_results", str(results))
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "pre"))
    return results


def _fake_nnunet(calls: list[str], crash_first: bool):
    """Stand-in for runner.train: decides like the runner, writes nnU-Net's checkpoints, may crash once."""
    from mednext.nnunet.runner import TrainAction, decide_action, fold_dir

    def train(run, job, plans, configuration=None, device="cuda"):
        fold = fold_dir(run, plans, configuration)
        action = decide_action(fold)
        calls.append(action.value)
        if action is TrainAction.FRESH:
            _nnunet_checkpoint(fold / "checkpoint_latest.pth", 1)
            if crash_first:
                raise subprocess.CalledProcessError(1, "nnUNetv2_train")
        _nnunet_checkpoint(fold / "checkpoint_final.pth", job.settings.epochs)
        (fold / "validation").mkdir(exist_ok=True)
        (fold / "validation" / "summary.json").write_text("{}")
        return action

    return train


def _train_args(tmp_path: Path) -> list[str]:
    return ["train", "--dataset", "Dataset999_Test", "--network", "MedNeXt-S_k3", "--fold", "0", "--device", "cpu",
            "--set", "epochs=3", "--set", "iterations_per_epoch=2", "--workers", "1", "--set", "tta_mirroring=false"]


def test_train_command_counts_a_resume(nnunet_results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mednext.nnunet.runner as runner

    calls: list[str] = []
    monkeypatch.setattr(runner, "train", _fake_nnunet(calls, crash_first=True))
    with pytest.raises(subprocess.CalledProcessError):
        main(_train_args(tmp_path))
    assert main(_train_args(tmp_path)) == 0
    assert main(_train_args(tmp_path)) == 0  # done: nothing to record
    assert calls == ["fresh", "continue", "done"]
    (path,) = nnunet_results.rglob("provenance.json")
    assert path.parent.name == "fold_0" and (path.parent / "checkpoint_final.pth").is_file()
    record = json.loads(path.read_text())
    assert [(r["action"], r["status"]) for r in record["runs"]] == [("fresh", "failed"), ("continue", "ok")]
    assert record["resumes"] == 1 and record["epochs_completed"] == 3
    assert record["job"]["epochs"] == 3 and record["job"]["tta_mirroring"] is False
    assert record["network"] == "MedNeXt-S_k3" and record["fold"] == 0


# -- no credentials, no home paths -----------------------------------------------------------------
def test_planted_token_and_home_never_written(nnunet_results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No secret or home path leaves the process, on the cheap path: a train and an evaluate with a planted
    token; grep every file."""
    import mednext.nnunet.runner as runner

    home = tmp_path / "home" / "alice"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SYNAPSE_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("SOME_API_KEY", "abcd-1234")
    monkeypatch.setenv(prov.ENV_CONFIG_SHA256, f"{TOKEN}-in-a-config-hash")  # a leak through any value
    monkeypatch.setattr(runner, "train", _fake_nnunet([], crash_first=False))
    assert main(_train_args(tmp_path)) == 0
    (fold,) = (p.parent for p in nnunet_results.rglob("provenance.json"))
    (fold / "recipe.json").write_text(json.dumps({"lr": 1e-4, "upkern_parent_checkpoint": f"{home}/r/checkpoint_final.pth"}))

    gt, pred = tmp_path / "gt", tmp_path / "pred"
    labels = np.zeros((6, 8, 8), np.uint8)
    labels[1:4, 2:6, 2:6] = 1
    for folder in (gt, pred):
        folder.mkdir()
        sitk.WriteImage(sitk.GetImageFromArray(labels), str(folder / "case_0.nii.gz"))
    out = home / "results" / "demo" / "MedNeXt-S_k3" / "fold_0" / "metrics.csv"
    assert main(["evaluate", "--gt", str(gt), "--pred", str(pred), "--out", str(out), "--dataset", "demo",
                 "--network", f"MedNeXt-S_k3-{home}", "--fold", "0", "--labels", "1", "--spacing-modes", "physical",
                 "--fold-dir", str(fold)]) == 0

    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".json", ".csv")]
    assert {"provenance.json", "recipe.json", "metrics.csv"} <= {p.name for p in written}
    for path in written:
        text = path.read_text(errors="replace")
        assert TOKEN not in text and "abcd-1234" not in text, path
        if path.name == "provenance.json" or path == out.parent / "recipe.json":
            assert str(home) not in text, path
    record = json.loads((out.parent / "provenance.json").read_text())
    assert record["network"] == "MedNeXt-S_k3-~" and record["config_hash"] == "<redacted>-in-a-config-hash"
    assert record["training"]["resumes"] == 0 and record["training"]["epochs_completed"] == 3
    copy = json.loads((out.parent / "recipe.json").read_text())
    assert copy == {"lr": 1e-4, "upkern_parent_checkpoint": "~/r/checkpoint_final.pth"}
    import hashlib
    assert record["recipe_hash"] == hashlib.sha256(
        b'{"lr":0.0001,"upkern_parent_checkpoint":"~/r/checkpoint_final.pth"}').hexdigest()


def test_scrub_keeps_lookalike_paths_and_short_values() -> None:
    homes, secrets = ["/home/al"], ["s3cr3t-value"]
    assert prov.scrub({"/home/al/x": ["/home/al", "/home/alice/x", "a s3cr3t-value b", 3, None]}, homes, secrets) == {
        "~/x": ["~", "/home/alice/x", "a <redacted> b", 3, None]}
    assert prov.secret_values({"GITHUB_TOKEN": "ghp_abcdef", "SSH_AUTH_SOCK": "/tmp/a", "X_KEY": "1", "PATH": "/bin"}) == [
        "ghp_abcdef", "/tmp/a"]


def test_a_run_refused_before_nnunet_started_leaves_no_fold_folder(tmp_path: Path, repo: Path) -> None:
    """An UpKern start without its parent fails before nnU-Net writes anything: no fold folder is left
    (tests/nnunet/test_pipeline.py checks the same through the real train command). A run that wrote
    something keeps its record, closed as failed."""
    ident, job = {"network": "MedNeXt-S_k5", "fold": 1}, {"epochs": 10}
    refused = tmp_path / "refused" / "fold_1"
    with pytest.raises(FileNotFoundError):
        with prov.training_provenance(refused, "fresh", ident, job, repo=repo):
            raise FileNotFoundError("parent checkpoint_final.pth missing")
    assert not refused.exists()

    crashed = tmp_path / "crashed" / "fold_1"
    with pytest.raises(RuntimeError):
        with prov.training_provenance(crashed, "fresh", ident, job, repo=repo):
            (crashed / "training_log.txt").write_text("epoch 0\n")
            raise RuntimeError("CUDA out of memory")
    assert json.loads((crashed / "provenance.json").read_text())["runs"][-1]["status"] == "failed"
