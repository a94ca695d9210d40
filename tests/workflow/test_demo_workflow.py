"""The demo DAG end to end on a real one-node SLURM cluster, then rerun behaviour,
then a SLURM time-out and its resumed retry.

The cluster (Debian slurmctld + slurmd + munge, no accounting) is started by ``tools/local_slurm.sh``;
the demo runs through ``--profile slurm`` exactly as a user's paper run would, with ``config/demo.yaml``
unchanged as its CPU config. This one run is both the cluster check (submission, UpKern order, reruns)
and the demo's regression guard: every demo network must reach a cross-fold mean
DSC of at least 0.80 on the synthetic validation cases. The later tests reuse that finished work directory.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mednext.checkpoint_io import load_weights_only
from mednext.networks import get_network
from mednext.workflow.grid import Run
from mednext.workflow.layout import Layout
from tests.workflow.conftest import REPO, SNAKEMAKE, job_counts, run_snakemake

DEMO_CONFIG = str(REPO / "config" / "demo.yaml")
TABLE_FILES = [f"{stem}.{ext}" for stem in ("table2", "table1_ablations", "test_set") for ext in ("csv", "md", "tex", "html")] + [
    "table1_configs.csv", "table1_configs.md", "reproduced_vs_reported.png"]
TABLE_FILES += ["provenance.csv"]  # one row per (dataset, network, fold) behind the tables
TABLE_FILES += [f"{stem}.{ext}" for stem in ("results_other_datasets", "significance") for ext in ("csv", "md", "tex", "html")]
TABLE_FILES += ["significance.png", "training_curves.png", "per_class_dsc.png", "upkern_first_epoch.png"]
TABLE_FILES += ["status.csv", "grid_status.png"]  # where the grid stands (mednext-repro status), for the report

pytestmark = [pytest.mark.slow, pytest.mark.starts_first]

DEMO = yaml.safe_load(Path(DEMO_CONFIG).read_text())
FOLDS = DEMO["folds"]
DEMO_NETWORKS = DEMO["networks"] + DEMO["ablations"]["networks"]
#: Every demo network reaches this cross-fold mean DSC on the synthetic validation
#: cases (README, "CPU demo" in DEVIATIONS.md).
LEARNED_DSC = 0.80


def _nnunet_results(demo_dir: Path) -> Path:
    """nnU-Net's results folder of the demo's synthetic dataset in ``demo_dir``."""
    return demo_dir / "demo" / "nnUNet" / "nnUNet_results" / "Dataset990_SyntheticAbdomen"


@pytest.fixture(scope="module")
def demo_dir(slurm_env, tmp_path_factory) -> Path:
    """The demo DAG (``config/demo.yaml`` as ``make demo`` runs it) through ``--profile slurm`` into a fresh work directory."""
    workdir = tmp_path_factory.mktemp("demo")
    # --jobs 4 on the 2-CPU node: SLURM holds two ready jobs pending and starts each the moment a CPU frees,
    # instead of after the executor's next status check (its interval grows by 10 s per idle check).
    run_snakemake("all_tables", "--profile", "slurm", "--configfile", DEMO_CONFIG, "--directory", str(workdir),
                  "--jobs", "4", "--slurm-keep-successful-logs", env=slurm_env, timeout=2400)
    return workdir


def _local(*args: str, workdir: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    return run_snakemake(*args, "--configfile", DEMO_CONFIG, "--directory", str(workdir), "--cores", "2", **kwargs)


def test_demo_dag_went_through_sbatch_and_produced_every_table(demo_dir: Path, slurm_env) -> None:
    tables = demo_dir / "demo" / "paper_tables"
    assert sorted(p.name for p in tables.iterdir() if not p.name.startswith(".")) == sorted(TABLE_FILES)
    slurm_logs = demo_dir / ".snakemake" / "slurm_logs"
    submitted = {p.name for p in slurm_logs.iterdir()}
    assert {"rule_train", "rule_evaluate", "rule_plan_and_preprocess", "rule_prepare_dataset"} <= submitted
    train_jobs = list((slurm_logs / "rule_train").rglob("*.log"))
    trainings = len(DEMO_NETWORKS) * len(FOLDS)
    assert trainings == 8  # nnU-Net, S_k3, S_k5 and the resampling ablation, on folds 0 and 1
    assert len(train_jobs) == trainings  # one sbatch job per training
    state = Path(slurm_env["SLURM_CONF"]).parent
    controller_log = (state / "log" / "slurmctld.log").read_text()
    completed = set(re.findall(r"_job_complete: JobId=(\d+) WEXITSTATUS 0", controller_log))
    assert len(completed) == trainings + trainings + 2  # trainings, evaluations, data and planning; tables run locally
    table2 = pd.read_csv(tables / "table2.csv")
    assert "synthetic" not in set(table2["dataset"])  # the paper's table keeps the paper's rows
    assert table2.loc[table2["dataset"] == "btcv", "reproduced"].isna().all()  # not run: shown as missing
    assert "—" in (tables / "table2.md").read_text()


def test_every_demo_network_learns(demo_dir: Path) -> None:
    """The demo's regression guard: cross-fold mean DSC >= 0.80 per network, in our table and in nnU-Net's summaries."""
    table = pd.read_csv(demo_dir / "demo" / "paper_tables" / "results_other_datasets.csv")
    dsc = table[(table["dataset"] == "synthetic") & (table["metric"] == "DSC")].set_index("network")
    assert sorted(dsc.index) == sorted(DEMO_NETWORKS)
    assert (dsc["folds_done"] == len(FOLDS)).all()
    results = _nnunet_results(demo_dir)
    learned = {}
    for network in DEMO_NETWORKS:
        trainer = get_network(network).trainer_name
        # nnU-Net's own validation Dice (mean over the foreground labels per fold), independent of our evaluation
        nnunet_dice = [json.loads((results / f"{trainer}__nnUNetPlans_1mm__3d_fullres" / f"fold_{fold}" / "validation"
                                   / "summary.json").read_text())["foreground_mean"]["Dice"] for fold in FOLDS]
        learned[network] = (round(float(dsc.loc[network, "reproduced"]) / 100, 4), round(sum(nnunet_dice) / len(nnunet_dice), 4))
    assert all(ours >= LEARNED_DSC and theirs >= LEARNED_DSC for ours, theirs in learned.values()), learned
    # the two agree: the same predictions, scored by our evaluation and by nnU-Net (2 cases in every fold)
    assert all(abs(ours - theirs) < 1e-3 for ours, theirs in learned.values()), learned


def test_kernel5_run_started_from_its_kernel3_fold_by_upkern(demo_dir: Path) -> None:
    results = _nnunet_results(demo_dir)
    for fold in FOLDS:
        upkern = results / f"nnUNetTrainer_MedNeXt_S_k5__nnUNetPlans_1mm__3d_fullres/fold_{fold}/upkern.json"
        record = upkern.read_text()
        assert f"nnUNetTrainer_MedNeXt_S_k3__nnUNetPlans_1mm__3d_fullres/fold_{fold}/checkpoint_final.pth" in record


def test_rerun_after_completion_does_nothing(demo_dir: Path) -> None:
    result = _local("all_tables", "-n", workdir=demo_dir)
    assert "Nothing to be done" in result.stdout + result.stderr


def test_a_changed_setting_does_not_redo_finished_trainings(demo_dir: Path, tmp_path: Path) -> None:
    """Snakemake re-runs a job whose params changed, and its downstream, deleting their outputs first: a
    training setting, the planning workers or the config's key order must not cost a finished
    checkpoint_final.pth. Training settings reach the train command outside its params; planning's params
    are what decides the plans; trainings need the plans to exist, not to be older."""
    changed = tmp_path / "changed.yaml"
    config = yaml.safe_load(Path(DEMO_CONFIG).read_text())
    config["training"].update(checkpoint_minutes=5, gradient_checkpointing="on", divergence_patience=7)
    config["planning"]["processes"] = 3
    changed.write_text(yaml.safe_dump(config))  # sorted keys: another order than the demo file's
    result = run_snakemake("all_tables", "-n", "--configfile", str(changed), "--directory", str(demo_dir), "--cores", "2")
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout[-3000:]


def test_deleting_one_folds_metrics_reruns_only_its_downstream(demo_dir: Path) -> None:
    metrics = demo_dir / "demo" / "results" / "synthetic" / "MedNeXt-S_k3" / "fold_0" / "metrics.csv"
    before = pd.read_csv(metrics)
    metrics.unlink()
    counts = job_counts(_local("all_tables", "-n", workdir=demo_dir).stdout)
    assert counts == {"evaluate": 1, "summarize": 1, "provenance_table": 1, "results_tables": 1, "figures": 1,
                      "grid_status": 1, "all_tables": 1, "total": 7}
    _local("all_tables", workdir=demo_dir)
    pd.testing.assert_frame_equal(pd.read_csv(metrics), before)


def test_killed_training_resumes_on_rerun(demo_dir: Path, tmp_path: Path) -> None:
    """Kill the whole Snakemake process group mid-training; the rerun continues from checkpoint_latest."""
    fold = _nnunet_results(demo_dir) / "nnUNetTrainer_MedNeXt_B_k3__nnUNetPlans_1mm__3d_fullres" / "fold_0"
    target = str(fold.relative_to(demo_dir) / "checkpoint_final.pth")
    longer = tmp_path / "longer.yaml"  # the complete demo config (one source per run), 4 epochs, a checkpoint after each
    config = yaml.safe_load(Path(DEMO_CONFIG).read_text())
    config["training"].update(epochs=4, iterations_per_epoch=2, val_iterations=1, save_every=1, tta_mirroring=False)
    longer.write_text(yaml.safe_dump(config))
    command = [SNAKEMAKE, target, "--configfile", str(longer), "--directory", str(demo_dir), "--cores", "2"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    try:
        while not (fold / "checkpoint_latest.pth").exists():
            assert process.poll() is None, "training ended before writing checkpoint_latest.pth"
            assert time.monotonic() < deadline, "no checkpoint_latest.pth within 10 minutes"
            time.sleep(1)
        time.sleep(1)  # written by rename: whole once it exists
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert not (fold / "checkpoint_final.pth").exists()
    interrupted_epoch = load_weights_only(fold / "checkpoint_latest.pth")["current_epoch"]
    run_snakemake("--unlock", "--configfile", str(longer), "--directory", str(demo_dir), "--cores", "1")
    run_snakemake(*command[1:], timeout=900)
    final = load_weights_only(fold / "checkpoint_final.pth")
    assert final["current_epoch"] == 4
    log = (demo_dir / "demo/logs/train/Dataset990_SyntheticAbdomen/nnUNetTrainer_MedNeXt_B_k3__3d_fullres/fold_0.log").read_text()
    # Snakemake cleared the killed attempt's log: what is left is the rerun, from the runner's decision on
    second_attempt = log[log.index("mednext.nnunet.runner: MedNeXt-B_k3 fold 0: continue"):]
    assert interrupted_epoch >= 1
    epochs = [int(e) for e in re.findall(r"Epoch (\d+)\n", second_attempt)]
    assert epochs and epochs[0] == interrupted_epoch and epochs[-1] == 3


# --- A SLURM time-out loses at most one epoch. Last in this module: it adds a fold to the
# demo's work directory and reuses its cluster, data and plans (its config keeps the demo's `planning`, so
# nothing is re-planned; changing `planning` there would re-plan the demo's data). ---

#: One nnU-Net training (the signal path is the same ReproTrainer for every network) of one-iteration
#: epochs, as many as this machine runs in about TRAINING_LEFT_S after the test ends the job's time at
#: epoch TIME_OUT_AT_EPOCH: more than the <= 30 s slurmctld takes to notice, on a fast machine or a slow one.
TIME_OUT_AT_EPOCH = 2
TRAINING_LEFT_S = 60
TIMEOUT_FOLD = 2  # not a demo fold: the demo's results stay as they are; the demo's data and plans are reused


def _timeout_epochs(demo_dir: Path) -> int:
    """Epochs of one iteration for ~TRAINING_LEFT_S after TIME_OUT_AT_EPOCH, from the seconds per iteration
    of the demo's own nnU-Net epochs on this machine (lower quartile of "Epoch time" / iterations per
    epoch: the demo's fast epochs, since this training may run with the machine to itself)."""
    results = _nnunet_results(demo_dir)
    trainer = get_network("nnUNet").trainer_name
    logs = [log for fold in FOLDS for log in results.glob(f"{trainer}__*/fold_{fold}/training_log_*.txt")]
    times = sorted(float(t) for log in logs for t in re.findall(r"Epoch time: ([\d.]+) s", log.read_text()))
    per_iteration = times[len(times) // 4] / DEMO["training"]["iterations_per_epoch"]
    return TIME_OUT_AT_EPOCH + min(300, max(30, round(TRAINING_LEFT_S / per_iteration)))


def _timeout_config(workdir: Path, epochs: int) -> Path:
    """The complete demo config, cut to one nnU-Net fold; only signal saves (``save_every`` > epochs)."""
    config = yaml.safe_load(Path(DEMO_CONFIG).read_text())
    config.update(networks=["nnUNet"], folds=[TIMEOUT_FOLD], ablations={"datasets": [], "networks": []})
    config["training"].update(epochs=epochs, iterations_per_epoch=1, val_iterations=1, save_every=1000,
                              checkpoint_minutes=30, tta_mirroring=False)
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


def _epochs(log: str) -> list[int]:
    return [int(e) for e in re.findall(r": Epoch (\d+)\s*$", log, flags=re.MULTILINE)]


def _wait_for_epoch(fold_dir: Path, epoch: int, process: subprocess.Popen, output: Path) -> None:
    """Block until nnU-Net's training log in ``fold_dir`` has started ``epoch`` (10 minutes at most)."""
    deadline = time.monotonic() + 600
    while not any(epoch in _epochs(p.read_text()) for p in fold_dir.glob("training_log_*.txt")):
        assert process.poll() is None, f"Snakemake ended before epoch {epoch}:\n{output.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no epoch {epoch} in 10 minutes:\n{output.read_text()[-3000:]}"
        time.sleep(0.5)


def test_time_limit_sigterm_saves_and_the_retry_resumes_there(demo_dir: Path, slurm_env: dict[str, str],
                                                              tmp_path: Path) -> None:
    """A real SLURM time-out: once the training runs epoch TIME_OUT_AT_EPOCH the test moves the job's end
    time to 5 s from now (``scontrol update EndTime=now+5``); at that end time slurmctld treats the job as
    one whose ``--time`` ran out and sends the time-limit SIGTERM. The SIGTERM reaches ``nnUNetv2_train``
    inside the jobstep's ``srun`` (through ``mednext-repro train``, which passes it on); the trainer saves
    ``checkpoint_latest`` and exits non-zero, Snakemake retries, and the retry starts at the epoch that save
    recorded. ``save_every`` is larger than the run, so the signal save is the only checkpoint before the end.
    Ending the job at a chosen epoch instead of a 1-minute ``--time`` (SLURM's smallest) keeps the test
    independent of the machine's speed: a fast machine finished a 1-minute attempt, a slow one overran the
    2-minute retry."""
    epochs = _timeout_epochs(demo_dir)
    config_file = _timeout_config(tmp_path, epochs)
    layout = Layout.from_config(yaml.safe_load(config_file.read_text()))
    run = Run("synthetic", "nnUNet", TIMEOUT_FOLD)
    common = ("--configfile", str(config_file), "--directory", str(demo_dir))
    run_snakemake("--unlock", *common, "--cores", "1")  # an earlier test's killed Snakemake may have left its lock
    controller_log = Path(slurm_env["SLURM_CONF"]).parent / "log" / "slurmctld.log"
    demo_part = len(controller_log.read_text())  # the demo's jobs, before this test's
    fold_dir = demo_dir / Path(layout.checkpoint(run)).parent
    output = tmp_path / "snakemake.log"
    with output.open("w") as sink:
        process = subprocess.Popen([SNAKEMAKE, layout.checkpoint(run), "--profile", "slurm", *common, "--jobs", "1",
                                    "--retries", "1"], cwd=REPO, env=slurm_env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_for_epoch(fold_dir, TIME_OUT_AT_EPOCH, process, output)
        running = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i"], env=slurm_env, capture_output=True,
                                 text=True, check=True).stdout.split()
        assert len(running) == 1, f"expected only the training job running, squeue says {running}"
        # scontrol reads "now" on its side and slurmctld refuses an end time before its own now ("Invalid time
        # specified", seen in CI when a second ticked in between); 5 s ahead leaves room for a slow RPC.
        subprocess.run(["scontrol", "update", f"JobId={running[0]}", "EndTime=now+5"], env=slurm_env, check=True)
        assert process.wait(timeout=1200) == 0, output.read_text()[-4000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    timed_out = re.findall(r"Time limit exhausted for JobId=(\d+)", controller_log.read_text()[demo_part:])
    assert timed_out == running, f"slurmctld timed out {timed_out}, the training job was {running}"
    # one nnU-Net log per attempt, in the order written (nnU-Net's names do not zero-pad month and day)
    logs = [p.read_text() for p in sorted(fold_dir.glob("training_log_*.txt"), key=lambda p: p.stat().st_mtime)]
    assert len(logs) == 2, f"{len(logs)} training attempts, expected the timed-out one and its retry"
    first, retry = logs
    recorded = _signal_epoch(first)
    assert recorded is not None, "the timed-out attempt did not save on SIGTERM"
    assert "Training done." not in first, f"all {epochs} epochs ran before SLURM's time-out: raise TRAINING_LEFT_S"
    assert TIME_OUT_AT_EPOCH <= recorded < epochs
    assert recorded - 1 <= _epochs(first)[-1] <= recorded  # at most the interrupted epoch is redone
    assert _epochs(retry)[0] == recorded  # the retry resumed at the signal save, not at epoch 0
    assert _epochs(retry)[-1] == epochs - 1 and "Training done." in retry
    assert load_weights_only(fold_dir / "checkpoint_final.pth")["current_epoch"] == epochs
