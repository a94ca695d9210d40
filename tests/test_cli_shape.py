"""The CLI's shape: one module per command, one ``--dataset`` identifier everywhere."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

import pytest

import mednext.commands
from mednext.cli import build_parser
from mednext.data.errors import UnknownDatasetError
from mednext.nnunet.paths import nnunet_folder, nnunet_id

#: Commands that name a dataset (``data synthetic`` creates one: its ``--dataset-id`` is the id to write).
NAMES_A_DATASET = {"train", "predict", "plan", "recipe", "evaluate", "record-leaderboard", "status",
                   "data download", "data convert", "data prepare", "data splits"}


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = _commands(sub, f"{prefix}{name} ")
                found.update(nested or {f"{prefix}{name}": sub})
    return found


def test_each_command_module_registers_one_command() -> None:
    for info in pkgutil.iter_modules(mednext.commands.__path__):
        subparsers = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"mednext.commands.{info.name}").register(subparsers)
        assert len(subparsers.choices) == 1, (info.name, sorted(subparsers.choices))
        assert info.name.replace("_", "-") in subparsers.choices  # the module is named after its command


def test_every_command_naming_a_dataset_takes_the_one_dataset_option() -> None:
    commands = _commands(build_parser())
    with_dataset = {name for name, parser in commands.items()
                    if any("--dataset" in a.option_strings and a.help != argparse.SUPPRESS for a in parser._actions)}
    assert with_dataset == NAMES_A_DATASET
    for name in NAMES_A_DATASET:
        positionals = [a.dest for a in commands[name]._actions if not a.option_strings]
        assert positionals == [], (name, positionals)


@pytest.mark.parametrize("identifier", ["kits19", "KiTS19", "40", "Dataset040_KiTS19"])
def test_key_id_and_folder_name_name_the_same_dataset(identifier: str) -> None:
    assert nnunet_id(identifier) == 40
    assert nnunet_folder(identifier) == "Dataset040_KiTS19"
    args = build_parser().parse_args(["train", "--dataset", identifier, "--network", "MedNeXt-S_k3", "--fold", "0"])
    assert nnunet_id(args.dataset) == 40


def test_a_dataset_outside_the_registry_by_folder_or_by_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "raw" / "Dataset501_LiverToy").mkdir(parents=True)
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, str(tmp_path / name.removeprefix("nnUNet_")))
    assert nnunet_id("Dataset501_LiverToy") == nnunet_id("501") == 501
    assert nnunet_folder("501") == "Dataset501_LiverToy"  # found by nnU-Net in $nnUNet_raw
    with pytest.raises(UnknownDatasetError, match="dataset id 502"):
        nnunet_folder("502")
    with pytest.raises(UnknownDatasetError, match="unknown dataset 'liver_toy'"):
        nnunet_id("liver_toy")


@pytest.mark.parametrize(("text", "problem"), [
    ("training:\n  epochs: 3\n", "'datasets' is a required property"),  # a partial file: Snakemake would merge, we do not
    ("- just\n- a list\n", "mapping"),
])
def test_a_bad_config_file_is_one_error_line_naming_it(tmp_path: Path, text: str, problem: str) -> None:
    """Through the console entry point: exit 1, one ``error:`` line with the file's path, no traceback."""
    import subprocess
    import sys

    config = tmp_path / "mine.yaml"
    config.write_text(text)
    result = subprocess.run([sys.executable, "-m", "mednext", "status", "--config", str(config), "--no-squeue"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mednext-repro: error: {config}"), result.stderr
    assert problem in lines[0]


def test_building_the_command_line_imports_no_torch() -> None:
    """Every ``mednext-repro`` call builds the whole parser (``status`` on a login node, each rule's command):
    a default shown in a command's help must not import nnU-Net, torch or MONAI (1.7 s of a 2.4 s ``status``)."""
    import subprocess
    import sys

    code = ("import sys; from mednext.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'nnunetv2', 'monai', 'matplotlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout
