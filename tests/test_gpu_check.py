"""``benchmarks/gpu_check.py --smoke`` runs in CI, so the one-call GPU check never rots."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_smoke_run_prints_one_row_per_setting_through_the_trainer(tmp_path: Path, capsys) -> None:
    gpu_check = _load()
    csv = tmp_path / "table.csv"
    assert gpu_check.main(["--smoke", "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert f'"torch": "{torch.__version__}"' in out and '"cudnn"' in out and '"driver"' in out and '"gpu"' in out
    table = pd.read_csv(csv)
    project = table[table["source"] == "project"]
    assert list(project["setting"]) == ["official protocol", "checkpointing on", "checkpointing off", "bf16 autocast",
                                        "compile", "channels-last"]
    assert (project["status"] == "ok").all() and (project["s_per_iter"] > 0).all()
    active = dict(zip(project["setting"], project["checkpointing_active"]))
    # Official MedNeXt: gradient checkpointing only for M and L, so S runs without it unless forced
    assert active["official protocol"] == False and active["checkpointing on"] == True  # noqa: E712
    assert active["checkpointing off"] == False  # noqa: E712
    official = table[table["source"] == "official v1"]
    assert len(official) == len(project)
    assert (official["status"] == "ok").all() or "official v1 network not importable" in out
