"""A SLURM time-out loses at most one epoch (issue 11, item 2), on the real one-node SLURM.

One training (nnU-Net's network: the fastest on a CPU; the signal path is the same ReproTrainer for every network) runs through ``--profile slurm`` with a 1-minute limit per attempt (``runtime``
grows with the attempt). SLURM's time-limit SIGTERM reaches ``nnUNetv2_train`` inside the jobstep's
``srun`` (through ``mednext-repro train``, which passes it on), the trainer saves
``checkpoint_latest`` and exits non-zero, Snakemake retries, and each retry starts at the epoch that
save recorded. ``save_every`` is larger than the run, so the only checkpoints are the signal saves:
a retry starting anywhere but epoch 0 proves them. The controller's own log says which jobs timed out.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mednext.checkpoint_io import load_weights_only
from mednext.workflow.grid import Run
from mednext.workflow.layout import Layout
from tests.workflow.conftest import REPO, run_snakemake

pytestmark = pytest.mark.slow

EPOCHS = 40  # ~2 s each on a 2-core CI machine: longer than the 1-minute first attempt, done by the second



def _config(workdir: Path) -> Path:
    """The complete demo config, cut to one nnU-Net fold with a 1-minute CPU runtime on the first attempt."""
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config.update(networks=["nnUNet"], folds=[0], ablations={"datasets": [], "networks": []})
    config["planning"]["batch_3d"] = 2  # the iteration cost EPOCHS was sized for (the demo itself uses 1)
    config["training"].update(epochs=EPOCHS, iterations_per_epoch=1, val_iterations=1, save_every=1000,
                              checkpoint_minutes=30, tta_mirroring=False)
    config["resources"] = {**config.get("resources", {}), "cpu_runtime_min": 1}  # attempt k: k minutes
    path = workdir / "timeout.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _signal_epoch(log: str) -> int | None:
    """The epoch the signal save told the retry to start (None if this attempt was not signalled)."""
    mid = re.search(r"SIGTERM: saved checkpoint_latest mid-epoch (\d+)", log)
    if mid:
        return int(mid.group(1))
    after = re.search(r"SIGTERM: saved checkpoint_latest after epoch (\d+)", log)
    return int(after.group(1)) + 1 if after else None


def test_time_limit_sigterm_saves_and_the_retry_resumes_there(slurm_env: dict[str, str], tmp_path: Path) -> None:
    config_file = _config(tmp_path)
    config = yaml.safe_load(config_file.read_text())
    layout = Layout.from_config(config)
    run = Run("synthetic", "nnUNet", 0)
    common = ("--configfile", str(config_file), "--directory", str(tmp_path))
    run_snakemake(layout.plans_json("synthetic"), *common, "--cores", "2", timeout=900)  # data + plans locally
    # attempt k gets k minutes; on a 2-core CI machine the second attempt finishes. More retries only
    # matter on a loaded machine, where start-up alone can take a whole first attempt.
    run_snakemake(layout.checkpoint(run), "--profile", "slurm", *common, "--jobs", "1", "--retries", "5",
                  env=slurm_env, timeout=1800)

    controller_log = (Path(slurm_env["SLURM_CONF"]).parent / "log" / "slurmctld.log").read_text()
    timed_out = re.findall(r"Time limit exhausted for JobId=(\d+)", controller_log)
    assert timed_out, "no training attempt hit its 1-minute time limit"
    fold_dir = tmp_path / Path(layout.checkpoint(run)).parent
    logs = [p.read_text() for p in sorted(fold_dir.glob("training_log_*.txt"))]
    # one nnU-Net log per attempt that got as far as the trainer (a loaded machine may spend a whole
    # first minute starting up); the last one finished
    assert 2 <= len(logs) <= len(timed_out) + 1
    # the attempt that trained the last epoch; a later one may only run nnU-Net's final validation
    done = next(i for i, log in enumerate(logs) if "Training done." in log)
    resumed_at = []
    for attempt, following in zip(logs[:done], logs[1:done + 1]):
        recorded = _signal_epoch(attempt)
        assert recorded is not None, "a timed-out attempt did not save on SIGTERM"
        epochs_run = [int(e) for e in re.findall(r": Epoch (\d+)\s*$", attempt, flags=re.MULTILINE)]
        assert recorded - 1 <= epochs_run[-1] <= recorded  # at most the interrupted epoch is redone
        first_epoch = int(re.findall(r": Epoch (\d+)\s*$", following, flags=re.MULTILINE)[0])
        assert first_epoch == recorded  # the retry resumed at the signal save, not at epoch 0
        resumed_at.append(first_epoch)
    assert max(resumed_at) >= 1  # save_every=1000: only the signal save can have put it there
    assert load_weights_only(fold_dir / "checkpoint_final.pth")["current_epoch"] == EPOCHS
