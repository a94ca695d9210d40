"""The ``data`` sub-command, driven through its own argparse registration."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import data_rawfixtures as rf
import pytest
from test_data_prepare import serve_amos

from mednext.commands import data as data_command
from mednext.data.splits import kfold_splits


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    data_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_synthetic_then_splits(tmp_path: Path, nnunet_env, capsys) -> None:
    assert run_cli(["data", "synthetic", "--n-cases", "6", "--seed", "3", "--shape", "16", "32", "32"]) == 0
    folder = nnunet_env["nnUNet_raw"] / "Dataset990_SyntheticAbdomen"
    assert capsys.readouterr().out.strip() == str(folder)
    assert len(list((folder / "imagesTr").iterdir())) == 6
    assert run_cli(["data", "splits", "--dataset", "synthetic"]) == 0
    splits = json.loads((nnunet_env["nnUNet_preprocessed"] / folder.name / "splits_final.json").read_text())
    assert splits == kfold_splits([f"synth_{i:03d}" for i in range(6)])


def test_prepare_through_env_mirror_and_list(tmp_path: Path, nnunet_env, http_server, monkeypatch, capsys) -> None:
    body, labels = rf.amos22_archive()
    serve_amos(http_server, body)
    monkeypatch.setenv("MEDNEXT_DATA_MIRROR", http_server.url)
    assert run_cli(["data", "prepare", "--dataset", "amos22", "--downloads", str(tmp_path / "dl"), "--expected-cases", "3"]) == 0
    folder = nnunet_env["nnUNet_raw"] / "Dataset222_AMOS22CT"
    assert sorted(p.name[:-7] for p in (folder / "labelsTr").iterdir()) == sorted(labels)
    assert "/records/7155725/files/amos22.zip" in http_server.paths_requested()
    run_cli(["data", "list"])
    out = capsys.readouterr().out
    for key in ("btcv", "amos22", "kits19", "brats21", "synthetic"):
        assert key in out


def test_bad_synapse_id_argument() -> None:
    with pytest.raises(SystemExit, match="expects FILE=synNNN"):
        run_cli(["data", "download", "--dataset", "brats21", "--synapse-id", "x.tar=123"])


def test_console_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    """Bad input through the installed entry point: one ``error:`` line naming the problem, exit code 1."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "SYNAPSE_AUTH_TOKEN"}
    result = subprocess.run([sys.executable, "-m", "mednext", "data", "download", "--dataset", "btcv",
                             "--downloads", str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("mednext-repro: error: btcv: SYNAPSE_AUTH_TOKEN is not set")
    assert str(tmp_path / "btcv" / "files" / "RawData.zip") in result.stderr  # where to place it by hand
