"""Run the stock ``nnUNetv2_train`` / ``nnUNetv2_predict`` for one (dataset, network, fold).

The project's trainers reach nnU-Net through ``nnUNet_extTrainer`` in the child's environment only.
Training is resumable: a rerun continues from ``checkpoint_latest.pth`` (nnU-Net's ``--c``),
only validates if training finished but validation did not, and does nothing when both are done.
An unreadable checkpoint is moved aside first and the previous good one used (issue 11); SIGTERM and
SIGUSR1 sent to this process are passed on to ``nnUNetv2_train``, which saves and exits non-zero.
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
from dataclasses import dataclass
from pathlib import Path

from mednext.nnunet.checkpoints import recover_resume_checkpoints
from mednext.networks import NetworkSpec, get_network
from mednext.nnunet.paths import DEFAULT_PLANS, dataset_name, fold_folder, nnunet_env, require_env
from mednext.nnunet.job_settings import Schedule

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


@dataclass(frozen=True)
class RunSpec:
    """One (dataset, network, fold) under a plans identifier."""

    dataset_id: int
    network: str
    fold: int | str
    plans: str = DEFAULT_PLANS
    configuration: str | None = None  # default: the network's (3d_fullres / 2d)

    @property
    def spec(self) -> NetworkSpec:
        return get_network(self.network)

    @property
    def config(self) -> str:
        return self.configuration or self.spec.configuration

    def fold_dir(self) -> Path:
        """Fold folder of this run under ``$nnUNet_results``."""
        return fold_folder(
            require_env("nnUNet_results"), dataset_name(self.dataset_id), self.spec.trainer_name, self.plans, self.config, self.fold
        )

    def parent_final_checkpoint(self) -> Path | None:
        """Final checkpoint of ``init_from`` that an UpKern start needs (None without ``init_from``)."""
        if self.spec.init_from is None:
            return None
        parent = RunSpec(self.dataset_id, self.spec.init_from, self.fold, self.plans, self.configuration)
        return parent.fold_dir() / "checkpoint_final.pth"


def nnunet_executable(name: str) -> str:
    """Path of an nnU-Net console script, next to this interpreter first, then on PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} or on PATH; is nnunetv2 installed?")
    return found


def train_command(run: RunSpec, action: TrainAction, device: str) -> list[str]:
    """The ``nnUNetv2_train`` command line for ``action`` (its entry point, run as :mod:`mednext.nnunet.train_entry`)."""
    cmd = [
        sys.executable, "-m", "mednext.nnunet.train_entry", str(run.dataset_id), run.config, str(run.fold),
        "-tr", run.spec.trainer_name, "-p", run.plans, "-device", device,
    ]
    if action is TrainAction.CONTINUE:
        cmd.append("--c")
    elif action is TrainAction.VALIDATE:
        cmd.append("--val")
    return cmd


#: nnU-Net v2's own torch.compile switch (``nnUNetTrainer._do_i_compile``: compiles on CUDA when unset).
COMPILE_ENV = "nnUNet_compile"


def train(
    run: RunSpec,
    device: str = "cuda",
    schedule: Schedule | None = None,
    extra_env: dict[str, str] | None = None,
    compile_network: bool = False,
) -> TrainAction:
    """Train (or resume, or only validate) one fold with stock ``nnUNetv2_train``; returns what was done.

    ``compile_network`` sets ``nnUNet_compile`` for the child: False (default) is the official
    protocol (v1 never compiled); nnU-Net keeps CPU and MPS uncompiled either way.

    Raises:
        FileNotFoundError: a fresh UpKern run whose parent's final checkpoint is missing.
        subprocess.CalledProcessError: nnU-Net failed.
    """
    fold_dir = run.fold_dir()
    if fold_dir.is_dir():
        recover_resume_checkpoints(fold_dir)
    action = decide_action(fold_dir)
    log.info("%s fold %s: %s (%s)", run.network, run.fold, action.value, fold_dir)
    if action is TrainAction.DONE:
        return action
    if action is TrainAction.FRESH:
        parent = run.parent_final_checkpoint()
        if parent is not None and not parent.is_file():
            raise FileNotFoundError(
                f"{run.network} starts from {run.spec.init_from}'s final checkpoint (UpKern), expected at {parent}; "
                f"train {run.spec.init_from} fold {run.fold} with plans {run.plans} first"
            )
    env = nnunet_env(extra={**(schedule.to_env() if schedule else {}), **(extra_env or {}),
                            COMPILE_ENV: "1" if compile_network else "0"})
    run_forwarding_signals(train_command(run, action, device), env)
    return action


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


def validation_cases(dataset_id: int, fold: int) -> list[str]:
    """Validation case ids of ``fold`` from nnU-Net's ``splits_final.json`` (written by the first training)."""
    from mednext.data.splits import fold_validation_cases  # scikit-learn: only when asked

    splits_file = require_env("nnUNet_preprocessed") / dataset_name(dataset_id) / "splits_final.json"
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
    run: RunSpec,
    output: Path,
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
    name = dataset_name(run.dataset_id)
    fold_dir = run.fold_dir()
    if not (fold_dir / checkpoint).is_file():
        raise FileNotFoundError(f"{fold_dir / checkpoint} not found; train {run.network} fold {run.fold} first")
    if input_dir is None and str(run.fold) == "all":
        raise ValueError("fold 'all' trains on every case and has no validation cases; pass an input folder")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".predict_input_", dir=output.parent) as tmp:
        if input_dir is None:
            _link_case_images(require_env("nnUNet_raw") / name, validation_cases(run.dataset_id, int(run.fold)), Path(tmp))
            input_dir = Path(tmp)
            if reference_dir is None:
                reference_dir = require_env("nnUNet_preprocessed") / name / "gt_segmentations"
        cmd = [
            nnunet_executable("nnUNetv2_predict"), "-i", str(input_dir), "-o", str(output), "-d", str(run.dataset_id),
            "-c", run.config, "-tr", run.spec.trainer_name, "-p", run.plans, "-f", str(run.fold),
            "-chk", checkpoint, "-device", device, "-npp", "1", "-nps", "1",
        ]
        if not tta:
            cmd.append("--disable_tta")
        subprocess.run(cmd, env=nnunet_env(), check=True)
    if not evaluate or reference_dir is None:
        return None
    return evaluate_folder(run, output, Path(reference_dir))


def evaluate_folder(run: RunSpec, predictions: Path, reference_dir: Path) -> Path:
    """nnU-Net's evaluation (Dice, IoU, TP/FP/FN per label) into ``predictions/summary.json``."""
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics_on_folder2

    run_dir = run.fold_dir().parent
    summary = predictions / "summary.json"
    compute_metrics_on_folder2(
        str(reference_dir), str(predictions), str(run_dir / "dataset.json"), str(run_dir / "plans.json"),
        output_file=str(summary), num_processes=1, chill=True,
    )
    return summary
