"""End to end on CPU through the project CLI and stock nnU-Net: plan, train, UpKern start, resume, predict.

Checked: MedNeXt-S k3 -> k5 by UpKern with exact initial weights, prediction and nnU-Net's Dice; the
same for the nnU-Net default; a killed training resumes, not from epoch 0; a 2-fold MedNeXt ensemble
predicts test images through ``predict-ensemble``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from _nnunet_support import DATASET_ID, set_nnunet_env, write_small_dataset

from mednext.cli import main
from mednext.data.synthetic import SYNTHETIC_LABELS
from mednext.networks import get_network
from mednext.nnunet.checkpoints import INITIAL_WEIGHTS_FILE, UPKERN_REPORT_FILE, load_nnunet_checkpoint, network_weights
from mednext.nnunet.paths import nnunet_folder
from mednext.nnunet.runner import fold_dir, validation_cases
from mednext.runs import Run
from mednext.upkern import upkern_state_dict

pytestmark = pytest.mark.slow  # ~4 min on 2 cores: 5 nnU-Net processes, each validating on CPU

PLANS = "nnUNetPlans_test"
#: Smallest MedNeXt training patch: the 1/16 bottleneck keeps 2 voxels for GroupNorm; at 1 mm the
#: test images are 30 x 16 x 16, i.e. one tile.
PATCH = ("32", "16", "16")
K5_EPOCHS = 3


def _fold_dir(network: str, fold: int = 0) -> Path:
    return fold_dir(Run(str(DATASET_ID), network, fold), PLANS)


def settings(**values: object) -> list[str]:
    """``--set KEY=VALUE`` arguments of the train command."""
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


def _train_argv(network: str, fold: int, schedule: list[str]) -> list[str]:
    """A CPU training that also saves its initial weights (the UpKern checks compare them)."""
    return ["train", "--dataset", str(DATASET_ID), "--network", network, "--fold", str(fold),
            "--plans-name", PLANS, "--device", "cpu", *settings(save_initial_weights="true"), *schedule]


def _train(network: str, fold: int = 0, *options: str) -> None:
    assert main(_train_argv(network, fold, [*settings(epochs=1, iterations_per_epoch=2, val_iterations=1), *options])) == 0


def _epochs_in_log(log: Path) -> list[int]:
    return [int(m) for m in re.findall(r": Epoch (\d+)\s*$", log.read_text(), flags=re.MULTILINE)]


def _predict(network: str, output: Path) -> None:
    assert main(["predict", "--dataset", str(DATASET_ID), "--network", network, "--fold", "0",
                 "--plans-name", PLANS, "--device", "cpu", "--output", str(output), "--disable-tta"]) == 0


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Synthetic dataset planned (1 mm, small patch) and preprocessed, MedNeXt-S k3 fold 0 trained."""
    with pytest.MonkeyPatch.context() as mp:
        dirs = set_nnunet_env(mp, tmp_path_factory.mktemp("nnunet"))
        write_small_dataset(dirs["nnUNet_raw"], shape=(12, 20, 20))
        assert main(["plan", "--dataset", str(DATASET_ID), "--plans-name", PLANS, "--patch-size", *PATCH,
                     "--patch-size-2d", "16", "16", "--configurations", "3d_fullres", "--num-processes", "1"]) == 0
        _train("MedNeXt-S_k3")
        yield dirs


@pytest.fixture
def env(prepared: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The module's nnU-Net folders in this test's environment."""
    for name, path in prepared.items():
        monkeypatch.setenv(name, str(path))
    return prepared


@pytest.fixture(scope="module")
def k5_interrupted(prepared: dict[str, Path]) -> dict[str, object]:
    """MedNeXt-S k5 fold 0 (UpKern from k3): killed after its first checkpoint_latest, then rerun."""
    with pytest.MonkeyPatch.context() as mp:
        for name, path in prepared.items():
            mp.setenv(name, str(path))
        fold_dir = _fold_dir("MedNeXt-S_k5")
        schedule = settings(epochs=K5_EPOCHS, iterations_per_epoch=1, val_iterations=1, save_every=1)
        argv = _train_argv("MedNeXt-S_k5", 0, schedule)
        proc = subprocess.Popen([sys.executable, "-m", "mednext", *argv], start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 300
            # "Epoch 1" is logged after epoch 0's checkpoint_latest has been written (and renamed).
            while not any(1 in _epochs_in_log(log) for log in fold_dir.glob("training_log_*.txt")):
                assert proc.poll() is None, f"training ended (code {proc.returncode}) before it could be interrupted"
                assert time.monotonic() < deadline, "no checkpoint within 300 s"
                time.sleep(0.2)
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        latest = fold_dir / "checkpoint_latest.pth"
        state = {
            "fold_dir": fold_dir,
            "latest_existed": latest.is_file(),
            "final_existed": (fold_dir / "checkpoint_final.pth").exists(),
            "resume_epoch": load_nnunet_checkpoint(latest)["current_epoch"] if latest.is_file() else None,
        }
        time.sleep(1.1)  # nnU-Net names its logs by the second
        assert main(argv) == 0  # the rerun
        return state


def _assert_dice_summary(summary_file: Path, n_cases: int) -> float:
    summary = json.loads(summary_file.read_text())
    assert len(summary["metric_per_case"]) == n_cases
    assert set(summary["mean"]) == {str(v) for v in SYNTHETIC_LABELS.values() if v}  # every synthetic organ
    dice = summary["foreground_mean"]["Dice"]
    assert 0.0 <= dice <= 1.0
    return dice


def test_killed_training_resumes_from_latest(env: dict[str, Path], k5_interrupted: dict[str, object]) -> None:
    """A killed training's rerun continues from checkpoint_latest (not epoch 0) and does not redo UpKern."""
    fold_dir = k5_interrupted["fold_dir"]
    assert k5_interrupted["latest_existed"] and not k5_interrupted["final_existed"]
    resume_epoch = k5_interrupted["resume_epoch"]
    assert 1 <= resume_epoch < K5_EPOCHS
    logs = sorted(fold_dir.glob("training_log_*.txt"))
    assert len(logs) == 2
    assert _epochs_in_log(logs[0])[0] == 0
    assert _epochs_in_log(logs[1]) == list(range(resume_epoch, K5_EPOCHS))  # resumed, never epoch 0
    assert "UpKern: initialised" in logs[0].read_text() and "UpKern" not in logs[1].read_text()
    assert load_nnunet_checkpoint(fold_dir / "checkpoint_final.pth")["current_epoch"] == K5_EPOCHS
    assert not (fold_dir / "checkpoint_latest.pth").exists()  # nnU-Net removes it when training completes
    assert (fold_dir / "validation" / "summary.json").is_file()


def test_upkern_k5_from_k3_then_predict(env: dict[str, Path], k5_interrupted: dict[str, object], tmp_path: Path) -> None:
    """MedNeXt: k5 starts from UpKern(k3 final weights), predicts, nnU-Net gives a Dice."""
    k3_dir, k5_dir = _fold_dir("MedNeXt-S_k3"), _fold_dir("MedNeXt-S_k5")
    assert load_nnunet_checkpoint(k3_dir / "checkpoint_final.pth")["current_epoch"] == 1

    # The k5 run started from UpKern(k3 final weights), computed here independently of the trainer.
    initial = torch.load(k5_dir / INITIAL_WEIGHTS_FILE, map_location="cpu", weights_only=True)
    n_classes = len(SYNTHETIC_LABELS)  # background + the synthetic organs
    fresh_k5 = get_network("MedNeXt-S_k5").builder(1, n_classes, (32, 16, 16)).state_dict()
    expected, report = upkern_state_dict(fresh_k5, network_weights(k3_dir / "checkpoint_final.pth"))
    assert not report.missing and not report.unused
    assert set(initial) == set(expected)
    for key, tensor in expected.items():
        assert torch.equal(initial[key], tensor), key
    depthwise = "enc_block_0.0.conv1.weight"
    assert initial[depthwise].shape[2:] == (5, 5, 5) and depthwise in report.resampled
    assert not torch.equal(initial[depthwise], fresh_k5[depthwise])  # not a from-scratch k5 net
    upkern = json.loads((k5_dir / UPKERN_REPORT_FILE).read_text())
    assert upkern["resampled"] == len(report.resampled) > 0
    assert Path(upkern["source"]) == k3_dir / "checkpoint_final.pth"

    # Training then changed the weights, and nnU-Net validated the fold.
    final = network_weights(k5_dir / "checkpoint_final.pth")
    assert not torch.equal(final[depthwise], initial[depthwise])
    val_cases = validation_cases(DATASET_ID, 0)
    _assert_dice_summary(k5_dir / "validation" / "summary.json", len(val_cases))

    # Predict the validation cases with the stock nnUNetv2_predict and evaluate them.
    out = tmp_path / "pred_k5"
    _predict("MedNeXt-S_k5", out)
    assert sorted(p.name for p in out.glob("*.nii.gz")) == [f"{c}.nii.gz" for c in sorted(val_cases)]
    _assert_dice_summary(out / "summary.json", len(val_cases))

    # A finished run is left alone by a rerun.
    stamp = (k5_dir / "checkpoint_final.pth").stat().st_mtime_ns
    _train("MedNeXt-S_k5")
    assert (k5_dir / "checkpoint_final.pth").stat().st_mtime_ns == stamp


def test_nnunet_default_train_and_validate(env: dict[str, Path]) -> None:
    """nnU-Net default: train, then nnU-Net predicts the validation case and evaluates it.

    (The stock ``nnUNetv2_predict`` path of the CLI is covered with MedNeXt above.) Trained with the
    demo's CPU options: one worker process, validation without mirroring.
    """
    _train("nnUNet", 0, "--workers", "1", *settings(tta_mirroring="false"))
    fold_dir = _fold_dir("nnUNet")
    checkpoint = load_nnunet_checkpoint(fold_dir / "checkpoint_final.pth")
    assert checkpoint["trainer_name"] == "nnUNetTrainer_nnUNet"
    assert checkpoint["inference_allowed_mirroring_axes"] is None
    mirrored = load_nnunet_checkpoint(_fold_dir("MedNeXt-S_k3") / "checkpoint_final.pth")
    assert tuple(mirrored["inference_allowed_mirroring_axes"]) == (0, 1, 2)  # nnU-Net's default, as the paper
    assert any(k.startswith("decoder.") for k in checkpoint["network_weights"])  # nnU-Net's PlainConvUNet
    val_cases = validation_cases(DATASET_ID, 0)
    assert sorted(p.name for p in (fold_dir / "validation").glob("*.nii.gz")) == [f"{c}.nii.gz" for c in sorted(val_cases)]
    _assert_dice_summary(fold_dir / "validation" / "summary.json", len(val_cases))
    assert (fold_dir / "progress.png").is_file()  # nnU-Net's plot, throttled, still drawn after the last epoch

    # The run left its recipe card, agreeing with what the checkpoint's optimiser really used.
    for network, optimiser in (("nnUNet", "SGD"), ("MedNeXt-S_k3", "AdamW")):
        card = json.loads((_fold_dir(network) / "recipe.json").read_text())
        state = load_nnunet_checkpoint(_fold_dir(network) / "checkpoint_final.pth")
        group = state["optimizer_state"]["param_groups"][0]
        assert (card["network"], card["optimizer"], card["device"]) == (network, optimiser, "cpu")
        assert card["weight_decay"] == group["weight_decay"] and card["lr"] == group["initial_lr"]
        if optimiser == "AdamW":
            assert card["eps"] == group["eps"] and card["betas"] == list(group["betas"])
        else:
            assert (card["momentum"], card["nesterov"]) == (group["momentum"], group["nesterov"])
        assert card["epochs"] == 1 and card["iterations_per_epoch"] == 2 and card["patch_size"] == [32, 16, 16]
        assert card["amp"] is False and card["compile"] is False  # nnU-Net: CPU neither autocasts nor compiles
        axes = state["inference_allowed_mirroring_axes"]
        assert card["mirroring_axes"] == (None if axes is None else [int(a) for a in axes])


def test_upkern_start_needs_parent_checkpoint(env: dict[str, Path]) -> None:
    with pytest.raises(FileNotFoundError, match=r"MedNeXt-S_k3.*fold_1.*checkpoint_final\.pth"):
        _train("MedNeXt-S_k5", fold=1)
    assert not _fold_dir("MedNeXt-S_k5", 1).exists()


def test_two_fold_mednext_ensemble_predicts_every_input_image(env: dict[str, Path], tmp_path: Path) -> None:
    """``predict-ensemble`` runs stock nnU-Net, which must find the MedNeXt trainer class by
    name although this process has no ``nnUNet_extTrainer``; folds 0 and 2 of MedNeXt-S k3 (fold 1
    stays untrained for the UpKern-parent test)."""
    raw = env["nnUNet_raw"] / nnunet_folder(DATASET_ID)
    assert main(["train", "--dataset", raw.name, "--network", "MedNeXt-S_k3", "--fold", "2", "--plans-name", PLANS,
                 "--device", "cpu", *settings(epochs=1, iterations_per_epoch=1, val_iterations=1, tta_mirroring="false"),
                 "--workers", "1"]) == 0  # the dataset by folder name (the fixture used its id)
    images = sorted((raw / "imagesTr").glob("*_0000.nii.gz"))[:2]
    inputs = tmp_path / "test_images"
    inputs.mkdir()
    for image in images:
        (inputs / image.name).symlink_to(image)
    assert "nnUNet_extTrainer" not in os.environ

    out = tmp_path / "ensemble"
    assert main(["predict-ensemble", "--model-dir", str(_fold_dir("MedNeXt-S_k3").parent), "--input", str(inputs),
                 "--output", str(out), "--folds", "0", "2", "--device", "cpu", "--processes", "1", "--disable-tta"]) == 0

    labels = set(json.loads((raw / "dataset.json").read_text())["labels"].values())
    assert sorted(p.name for p in out.glob("*.nii.gz")) == sorted(i.name.replace("_0000", "") for i in images)
    for image in images:
        source = sitk.ReadImage(str(image))
        prediction = sitk.ReadImage(str(out / image.name.replace("_0000", "")))
        assert prediction.GetSize() == source.GetSize()
        assert np.allclose(prediction.GetSpacing(), source.GetSpacing())
        assert set(np.unique(sitk.GetArrayFromImage(prediction)).tolist()) <= labels
