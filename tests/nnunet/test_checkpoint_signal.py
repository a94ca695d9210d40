"""SIGTERM saves checkpoint_latest and a rerun resumes there, without SLURM.

The signal goes to ``mednext-repro train`` only (as a scheduler signals the job's command), which must
pass it on to ``nnUNetv2_train``. ``save_every`` is larger than the run, so the only checkpoint is the
signal save. The rerun then meets a truncated checkpoint_latest beside the previous good one.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _nnunet_support import DATASET_ID, set_nnunet_env, write_small_dataset

from mednext.cli import main
from mednext.nnunet.checkpoints import PREVIOUS_LATEST, load_nnunet_checkpoint
from mednext.nnunet.runner import fold_dir as nnunet_fold_dir
from mednext.runs import Run

pytestmark = pytest.mark.slow  # two short nnU-Net trainings on the CPU

PLANS = "nnUNetPlans_signal"
EPOCHS = 4
NETWORK = "nnUNet"  # the same ReproTrainer save/exit path as every network


def _epochs(log: str) -> list[int]:
    return [int(m) for m in re.findall(r": Epoch (\d+)\s*$", log, flags=re.MULTILINE)]


def test_sigterm_saves_mid_run_and_the_rerun_resumes_at_that_epoch(tmp_path: Path, monkeypatch, caplog) -> None:
    dirs = set_nnunet_env(monkeypatch, tmp_path)
    write_small_dataset(dirs["nnUNet_raw"], shape=(12, 20, 20))
    assert main(["plan", "--dataset", str(DATASET_ID), "--plans-name", PLANS, "--patch-size", "32", "16", "16",
                 "--patch-size-2d", "16", "16", "--configurations", "3d_fullres", "--num-processes", "1"]) == 0
    argv = ["train", "--dataset", str(DATASET_ID), "--network", NETWORK, "--fold", "0", "--plans-name", PLANS,
            "--device", "cpu", "--set", f"epochs={EPOCHS}", "--set", "iterations_per_epoch=3", "--set", "val_iterations=1",
            "--set", "save_every=1000", "--set", "tta_mirroring=false"]
    fold_dir = nnunet_fold_dir(Run(str(DATASET_ID), NETWORK, 0), PLANS)
    process = subprocess.Popen([sys.executable, "-m", "mednext", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not any(1 in _epochs(p.read_text()) for p in fold_dir.glob("training_log_*.txt")):
            assert process.poll() is None, f"training ended (code {process.returncode}) before epoch 1"
            assert time.monotonic() < deadline, "epoch 1 not reached within 300 s"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)  # the parent only: it forwards to nnUNetv2_train
        returncode = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert returncode == 128 + signal.SIGTERM  # non-zero: a scheduler retries
    first_log = next(fold_dir.glob("training_log_*.txt")).read_text()
    saved = re.search(r"SIGTERM: saved checkpoint_latest (mid-epoch|after epoch) (\d+)", first_log)
    assert saved, "no signal save in the training log"
    resume_epoch = int(saved.group(2)) + (1 if saved.group(1) == "after epoch" else 0)
    assert 1 <= resume_epoch <= _epochs(first_log)[-1] + 1  # within one epoch of where it was
    assert load_nnunet_checkpoint(fold_dir / "checkpoint_latest.pth")["current_epoch"] == resume_epoch
    assert not (fold_dir / "checkpoint_final.pth").exists()

    # The rerun meets a truncated checkpoint_latest and the previous good one beside it.
    latest = fold_dir / "checkpoint_latest.pth"
    (fold_dir / PREVIOUS_LATEST).write_bytes(latest.read_bytes())
    latest.write_bytes(latest.read_bytes()[:4096])
    time.sleep(1.1)  # nnU-Net names its logs by the second
    with caplog.at_level("WARNING"):
        assert main(argv) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and str(latest) in warnings[0]
    assert len(list(fold_dir.glob("checkpoint_latest.pth.corrupt-*"))) == 1
    logs = sorted(fold_dir.glob("training_log_*.txt"))
    assert len(logs) == 2 and _epochs(logs[1].read_text()) == list(range(resume_epoch, EPOCHS))
    assert load_nnunet_checkpoint(fold_dir / "checkpoint_final.pth")["current_epoch"] == EPOCHS
    assert not latest.exists() and not (fold_dir / PREVIOUS_LATEST).exists()  # cleaned up at the end
