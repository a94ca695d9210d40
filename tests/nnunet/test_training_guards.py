"""The divergence guard and the epoch-100 rescue in real CPU trainings through ``mednext-repro train``.

The misbehaving networks come from a test plugin (``tests.plugins.misbehaving_networks``, named in
``$MEDNEXT_NETWORK_PLUGINS`` for the training processes only): one whose output turns NaN after a few
steps, one that predicts only background (every validation Dice 0). The trainers are the production ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _nnunet_support import DATASET_ID, set_nnunet_env, write_small_dataset

from mednext.cli import main
from mednext.nnunet.checkpoints import load_nnunet_checkpoint
from mednext.nnunet.divergence import DIVERGED_EXIT_CODE, read_marker
from mednext.nnunet.paths import fold_folder, nnunet_folder
from mednext.nnunet.rescue import read_rescue_record
from mednext.status.fold_state import State, decide_state, observe_fold
from tests.plugins.misbehaving_networks import NAN_FROM_FORWARD

pytestmark = pytest.mark.slow  # five short nnU-Net trainings of a 1x1x1 convolution on the CPU

PLANS = "nnUNetPlans_guards"
REPO = Path(__file__).resolve().parents[2]
PLUGIN_ENV = {"MEDNEXT_NETWORK_PLUGINS": "tests.plugins.misbehaving_networks", "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory):
    """The small synthetic dataset planned at a 32 x 16 x 16 patch."""
    with pytest.MonkeyPatch.context() as mp:
        dirs = set_nnunet_env(mp, tmp_path_factory.mktemp("guards"))
        write_small_dataset(dirs["nnUNet_raw"], shape=(12, 20, 20))
        assert main(["plan", "--dataset", str(DATASET_ID), "--plans-name", PLANS, "--patch-size", "32", "16", "16",
                     "--patch-size-2d", "16", "16", "--configurations", "3d_fullres", "--num-processes", "1"]) == 0
        yield dirs


def _train(dirs: dict[str, Path], network: str, *settings: str) -> subprocess.CompletedProcess:
    """``mednext-repro train`` in a process of its own that loads the plugin."""
    argv = [sys.executable, "-m", "mednext", "train", "--dataset", str(DATASET_ID), "--network", network, "--fold", "0",
            "--plans-name", PLANS, "--device", "cpu", "--workers", "1", "--set", "val_iterations=1",
            "--set", "tta_mirroring=false", *(item for s in settings for item in ("--set", s))]
    env = {**os.environ, **{k: str(v) for k, v in dirs.items()}, **PLUGIN_ENV}
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def _fold(dirs: dict[str, Path], network: str) -> Path:
    return fold_folder(dirs["nnUNet_results"], nnunet_folder(str(DATASET_ID)), f"nnUNetTrainer_{network}", PLANS,
                       "3d_fullres", 0)


def _all_finite(checkpoint: Path) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in load_nnunet_checkpoint(checkpoint)["network_weights"].values())


def test_a_nan_loss_stops_the_training_and_the_retry_is_refused(planned: dict[str, Path]) -> None:
    patience, iterations = 3, 3
    schedule = ("epochs=5", f"iterations_per_epoch={iterations}", "save_every=1", f"divergence_patience={patience}")
    done = _train(planned, "NaNLoss", *schedule)
    assert done.returncode == DIVERGED_EXIT_CODE, done.stderr[-3000:]
    fold = _fold(planned, "NaNLoss")
    marker = read_marker(fold)
    # NaN from training forward pass NAN_FROM_FORWARD + 1 on: the patience-th NaN loss is iteration ...
    last_nan = NAN_FROM_FORWARD + patience - 1  # 0-based index of the training step that completes the streak
    assert (marker.epoch, marker.iteration) == divmod(last_nan, iterations)
    assert marker.consecutive == patience and marker.losses == ("nan",) * patience
    assert "stopped by the divergence guard" in done.stderr and "non-finite (nan) for 3 consecutive" in done.stderr
    assert not _all_finite(fold / "checkpoint_diverged.pth")  # what it had, for a post-mortem
    # the latest good checkpoint stays: the save at the end of the epoch the streak began in was skipped
    assert _all_finite(fold / "checkpoint_latest.pth")
    assert load_nnunet_checkpoint(fold / "checkpoint_latest.pth")["current_epoch"] == NAN_FROM_FORWARD // iterations
    log = next(fold.glob("training_log_*.txt")).read_text()
    assert "Divergence guard: training loss non-finite (nan) for 3 consecutive iterations" in log
    assert "checkpoint_latest.pth not written: the training loss has been non-finite" in log
    provenance = json.loads((fold / "provenance.json").read_text())
    assert provenance["runs"][-1]["status"] == "failed" and provenance["divergence"]["iteration"] == marker.iteration
    state = decide_state(observe_fold(fold, False, False, None, fold.parent / "none.log"), 5, None, None)
    assert state.state is State.DIVERGED and "(epoch 2, iteration 0;" in state.detail

    refused = _train(planned, "NaNLoss", *schedule)  # Snakemake's retry
    assert refused.returncode == DIVERGED_EXIT_CODE
    assert "refusing to start: the divergence guard stopped this training" in refused.stderr
    assert len(list(fold.glob("training_log_*.txt"))) == 1  # nnU-Net was not started
    assert len(json.loads((fold / "provenance.json").read_text())["runs"]) == 1  # nor an attempt recorded

    retried = _train(planned, "NaNLoss", *schedule, "retry_diverged=true")
    assert retried.returncode == DIVERGED_EXIT_CODE  # the plugin turns NaN again after the resume
    assert len(list(fold.glob("diverged.json.retried-*"))) == 1
    resumed = read_marker(fold)
    assert resumed.epoch > marker.epoch  # it resumed from checkpoint_latest, not from scratch


@pytest.mark.parametrize(("network", "momentum"), [("BackgroundOnly", None), ("BackgroundOnlySGD", (0.99, 0.95))])
def test_the_rescue_fires_at_the_configured_epoch_on_a_zero_dice(planned: dict[str, Path], network: str,
                                                                momentum: tuple[float, float] | None) -> None:
    done = _train(planned, network, "epochs=3", "iterations_per_epoch=2", "save_every=2", "rescue_epoch=1")
    assert done.returncode == 0, done.stderr[-3000:]
    fold = _fold(planned, network)
    rescue = read_rescue_record(fold)
    assert (rescue.fired, rescue.fired_at_epoch, rescue.mean_foreground_dice) == (True, 1, 0.0)
    assert (rescue.momentum_before, rescue.momentum_after) == (momentum or (None, None))
    assert rescue.reinitialised_modules == 1  # the network's one convolution
    final = load_nnunet_checkpoint(fold / "checkpoint_final.pth")
    before = load_nnunet_checkpoint(fold / "checkpoint_best.pth")  # epoch 0's: the first EMA is the best
    # He re-initialisation sets the bias to 0 (PyTorch's default draws it from +-1 for one input channel); only
    # SGD's momentum buffer, which the official rescue keeps, moves it afterwards, by weight decay's ~1e-8
    assert before["network_weights"]["conv.bias"].abs().max() > 1e-3
    assert final["network_weights"]["conv.bias"].abs().max() < 1e-6
    assert not torch.equal(final["network_weights"]["conv.weight"], before["network_weights"]["conv.weight"])
    groups = final["optimizer_state"]["param_groups"]
    assert groups[0].get("momentum") == (momentum[1] if momentum else None)  # AdamW gets no momentum entry
    log = next(fold.glob("training_log_*.txt")).read_text()
    assert "Rescue at the end of epoch 1: the mean foreground pseudo-Dice was 0" in log
    card = json.loads((fold / "recipe.json").read_text())
    assert (card["zero_dice_rescue"], card["zero_dice_rescue_epoch"], card["zero_dice_rescue_fired_at_epoch"]) == (True, 1, 1)
    assert json.loads((fold / "provenance.json").read_text())["rescue"]["fired_at_epoch"] == 1
