"""Run the stock ``nnUNetv2_train`` / ``nnUNetv2_predict`` for one (dataset, network, fold).

The project's trainers reach nnU-Net through ``nnUNet_extTrainer`` in the child's environment only.
Training is resumable: a rerun continues from ``checkpoint_latest.pth`` (nnU-Net's ``--c``),
only validates if training finished but validation did not, and does nothing when both are done.
An unreadable checkpoint is moved aside first and the previous good one used; SIGTERM and
SIGUSR1 sent to this process are passed on to ``nnUNetv2_train``, which saves and exits non-zero. A
training the divergence guard stopped is not started again until its marker goes (:func:`refuse_if_diverged`).
"""

from __future__ import annotations

import enum
import json
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mednext.networks import get_network
from mednext.nnunet.checkpoints import recover_resume_checkpoints
from mednext.nnunet.divergence import DivergedRunError, marker_path, read_marker_or_unreadable, set_marker_aside
from mednext.nnunet.job_settings import TrainingJob
from mednext.nnunet.paths import fold_folder, nnunet_env, nnunet_folder, nnunet_id, require_env
from mednext.runs import Run

log = logging.getLogger(__name__)


class TrainAction(enum.Enum):
    """What a (re)run of a training has to do, from the files in its fold folder."""

    FRESH = "fresh"  # nothing to continue from
    CONTINUE = "continue"  # nnU-Net --c from checkpoint_latest (or _best)
    VALIDATE = "validate"  # trained, validation missing: nnU-Net --val
    DONE = "done"  # checkpoint_final and validation/summary.json exist


def decide_action(fold_dir: Path) -> TrainAction:
    """The :class:`TrainAction` for a fold folder (after :func:`recover_resume_checkpoints`)."""
    if (fold_dir / "checkpoint_final.pth").is_file():
        return TrainAction.DONE if (fold_dir / "validation" / "summary.json").is_file() else TrainAction.VALIDATE
    if (fold_dir / "checkpoint_latest.pth").is_file() or (fold_dir / "checkpoint_best.pth").is_file():
        return TrainAction.CONTINUE
    return TrainAction.FRESH


def fold_dir(run: Run, plans: str, configuration: str | None = None) -> Path:
    """nnU-Net's fold folder of ``run`` under ``$nnUNet_results`` (configuration: default the network's)."""
    spec = get_network(run.network)
    return fold_folder(require_env("nnUNet_results"), nnunet_folder(run.dataset), spec.trainer_name, plans,
                       configuration or spec.configuration, run.fold)


def nnunet_executable(name: str) -> str:
    """Path of an nnU-Net console script, next to this interpreter first, then on PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} or on PATH; is nnunetv2 installed?")
    return found


def train_command(run: Run, plans: str, configuration: str | None, action: TrainAction, device: str) -> list[str]:
    """The ``nnUNetv2_train`` command line for ``action`` (its entry point, run as :mod:`mednext.nnunet.train_entry`)."""
    spec = get_network(run.network)
    cmd = [
        sys.executable, "-m", "mednext.nnunet.train_entry", str(nnunet_id(run.dataset)), configuration or spec.configuration,
        str(run.fold), "-tr", spec.trainer_name, "-p", plans, "-device", device,
    ]
    if action is TrainAction.CONTINUE:
        cmd.append("--c")
    elif action is TrainAction.VALIDATE:
        cmd.append("--val")
    return cmd


#: nnU-Net v2's own torch.compile switch (``nnUNetTrainer._do_i_compile``: compiles on CUDA when unset).
COMPILE_ENV = "nnUNet_compile"


def nnunet_job_env(job: TrainingJob) -> dict[str, str]:
    """The child's environment for ``job``: the job itself, and the nnU-Net variables it decides.

    ``nnUNet_compile`` follows ``training.compile`` (off: the official protocol, v1 never compiled;
    nnU-Net keeps CPU and MPS uncompiled either way); the CPUs the job holds become nnU-Net's
    augmentation and export processes.
    """
    env = {**job.to_env(), COMPILE_ENV: "1" if job.settings.compile else "0"}
    if job.cpu_threads is not None:
        env.update(nnUNet_n_proc_DA=str(job.cpu_threads), nnUNet_def_n_proc=str(job.cpu_threads))
    return env


def train(run: Run, job: TrainingJob, plans: str, configuration: str | None = None, device: str = "cuda") -> TrainAction:
    """Train (or resume, or only validate) one fold with stock ``nnUNetv2_train``; returns what was done.

    Raises:
        DivergedRunError: the divergence guard stopped an earlier attempt (see :func:`refuse_if_diverged`).
        FileNotFoundError: a fresh UpKern run whose parent's final checkpoint is missing.
        subprocess.CalledProcessError: nnU-Net failed (exit status ``DIVERGED_EXIT_CODE`` when the guard stopped it).
    """
    folder = fold_dir(run, plans, configuration)
    refuse_if_diverged(folder, job.settings.retry_diverged)
    if folder.is_dir():
        recover_resume_checkpoints(folder)
    action = decide_action(folder)
    log.info("%s fold %s: %s (%s)", run.network, run.fold, action.value, folder)
    if action is TrainAction.DONE:
        return action
    parent = run.parent()
    if action is TrainAction.FRESH and parent is not None:
        parent_checkpoint = fold_dir(parent, plans, configuration) / "checkpoint_final.pth"
        if not parent_checkpoint.is_file():
            raise FileNotFoundError(
                f"{run.network} starts from {parent.network}'s final checkpoint (UpKern), expected at {parent_checkpoint}; "
                f"train {parent.network} fold {run.fold} with plans {plans} first"
            )
    env = nnunet_env(extra=nnunet_job_env(job))
    run_forwarding_signals(train_command(run, plans, configuration, action, device), env)
    return action


def refuse_if_diverged(folder: Path, retry: bool) -> None:
    """Refuse a training whose fold folder holds the divergence guard's marker (an unreadable marker too),
    so that a retry does not burn another attempt on it; with ``retry`` set the marker aside instead.

    Raises:
        DivergedRunError: quoting the marker.
    """
    divergence = read_marker_or_unreadable(folder)
    if divergence is None:
        return
    if retry:
        aside = set_marker_aside(folder)
        log.warning("%s: diverged before (%s); starting again as training.retry_diverged asks (marker kept as %s)",
                    folder, divergence.describe(), aside.name)
        return
    raise DivergedRunError(marker_path(folder), divergence)


#: Signals passed on to the training process: SLURM's time-limit SIGTERM and a ``--signal`` SIGUSR1
#: (Ctrl-C already reaches the whole foreground process group).
FORWARDED_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGUSR1)


def run_forwarding_signals(cmd: list[str], env: dict[str, str]) -> None:
    """Run ``cmd``, passing SIGTERM/SIGUSR1 on to it and waiting for it to finish.

    Without this, a SIGTERM would end this process at once while ``nnUNetv2_train`` is still saving,
    and whatever waits on this process (Snakemake, SLURM's step) would stop before the save is done.

    Raises:
        subprocess.CalledProcessError: the command exited non-zero (e.g. 143 after a SIGTERM save).
    """
    process = subprocess.Popen(cmd, env=env)

    def forward(signum: int, frame: object) -> None:
        if process.poll() is None:
            process.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    try:
        returncode = process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if returncode != 0:
        raise subprocess.CalledProcessError(returncode, cmd)


def validation_cases(dataset: str, fold: int) -> list[str]:
    """Validation case ids of ``fold`` from nnU-Net's ``splits_final.json`` (written by the first training)."""
    from mednext.data.splits import fold_validation_cases  # scikit-learn: only when asked

    splits_file = require_env("nnUNet_preprocessed") / nnunet_folder(dataset) / "splits_final.json"
    if not splits_file.is_file():
        raise FileNotFoundError(f"{splits_file} not found; nnU-Net writes it when the first fold trains")
    return fold_validation_cases(splits_file, fold)


def _link_case_images(raw_dataset: Path, cases: Sequence[str], target: Path) -> None:
    """Symlink (or copy) the ``imagesTr`` channel files of ``cases`` into ``target``."""
    dataset_json = json.loads((raw_dataset / "dataset.json").read_text())
    ending = dataset_json["file_ending"]
    for case in cases:
        for channel in dataset_json["channel_names"]:
            source = raw_dataset / "imagesTr" / f"{case}_{int(channel):04d}{ending}"
            if not source.is_file():
                raise FileNotFoundError(f"image {source} of validation case {case} not found")
            link = target / source.name
            try:
                link.symlink_to(source.resolve())
            except OSError:
                shutil.copy2(source, link)


def predict(
    run: Run,
    plans: str,
    output: Path,
    configuration: str | None = None,
    input_dir: Path | None = None,
    device: str = "cuda",
    checkpoint: str = "checkpoint_final.pth",
    tta: bool = True,
    evaluate: bool = True,
    reference_dir: Path | None = None,
) -> Path | None:
    """Predict with stock ``nnUNetv2_predict``; without ``input_dir``, the fold's validation cases.

    With ``evaluate``, nnU-Net's evaluation of the predictions against ``reference_dir`` (default
    for validation cases: ``nnUNet_preprocessed/<dataset>/gt_segmentations``) is written to
    ``output/summary.json``, whose path is returned.
    """
    name = nnunet_folder(run.dataset)
    folder = fold_dir(run, plans, configuration)
    spec = get_network(run.network)
    if not (folder / checkpoint).is_file():
        raise FileNotFoundError(f"{folder / checkpoint} not found; train {run.network} fold {run.fold} first")
    if input_dir is None and str(run.fold) == "all":
        raise ValueError("fold 'all' trains on every case and has no validation cases; pass an input folder")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".predict_input_", dir=output.parent) as tmp:
        if input_dir is None:
            _link_case_images(require_env("nnUNet_raw") / name, validation_cases(run.dataset, int(run.fold)), Path(tmp))
            input_dir = Path(tmp)
            if reference_dir is None:
                reference_dir = require_env("nnUNet_preprocessed") / name / "gt_segmentations"
        cmd = [
            nnunet_executable("nnUNetv2_predict"), "-i", str(input_dir), "-o", str(output), "-d", str(nnunet_id(name)),
            "-c", configuration or spec.configuration, "-tr", spec.trainer_name, "-p", plans, "-f", str(run.fold),
            "-chk", checkpoint, "-device", device, "-npp", "1", "-nps", "1",
        ]
        if not tta:
            cmd.append("--disable_tta")
        subprocess.run(cmd, env=nnunet_env(), check=True)
    if not evaluate or reference_dir is None:
        return None
    return evaluate_folder(folder.parent, output, Path(reference_dir))


def evaluate_folder(run_dir: Path, predictions: Path, reference_dir: Path) -> Path:
    """nnU-Net's evaluation (Dice, IoU, TP/FP/FN per label) into ``predictions/summary.json``, with the
    ``dataset.json`` and ``plans.json`` of the training output folder ``run_dir``."""
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder2

    summary = predictions / "summary.json"
    compute_metrics_on_folder2(
        str(reference_dir), str(predictions), str(run_dir / "dataset.json"), str(run_dir / "plans.json"),
        output_file=str(summary), num_processes=1, chill=True,
    )
    return summary
