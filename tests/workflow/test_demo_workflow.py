"""The demo DAG end to end on a real one-node SLURM cluster, then rerun behaviour (issue 7, items 2-4).

The cluster (Debian slurmctld + slurmd + munge, no accounting) is started by ``tools/local_slurm.sh``;
the demo runs through ``--profile slurm`` exactly as a user's paper run would, with a complete copy of
the demo config as its CPU override, cut to fold 0 and 2 epochs x 2 iterations to keep CI short: this
module checks the cluster path (submission, UpKern order, reruns), not learning. The later tests reuse
that finished work directory.
"""

from __future__ import annotations

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
from tests.workflow.conftest import REPO, SNAKEMAKE, job_counts, run_snakemake

DEMO_CONFIG = str(REPO / "config" / "demo.yaml")
TABLE_FILES = [f"{stem}.{ext}" for stem in ("table2", "table1_ablations", "test_set") for ext in ("csv", "md", "tex")] + [
    "table1_configs.csv", "table1_configs.md", "reproduced_vs_reported.png"]
TABLE_FILES += ["provenance.csv"]  # one row per (dataset, network, fold) behind the tables (issue 13)
TABLE_FILES += [f"{stem}.{ext}" for stem in ("results_other_datasets", "significance") for ext in ("csv", "md", "tex")]
TABLE_FILES += ["significance.png", "training_curves.png", "per_class_dsc.png", "upkern_first_epoch.png"]  # issue 12

pytestmark = pytest.mark.slow

SHORT_CONFIG = "short_demo.yaml"  # written into the work directory by the demo_dir fixture
FOLDS = [0]


def _short_config(workdir: Path) -> str:
    """The complete demo config, cut to one fold and 2 epochs x 2 iterations (one source per run)."""
    config = yaml.safe_load(Path(DEMO_CONFIG).read_text())
    config["folds"] = FOLDS
    config["training"].update(epochs=2, iterations_per_epoch=2)
    path = workdir / SHORT_CONFIG
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture(scope="module")
def demo_dir(slurm_env, tmp_path_factory) -> Path:
    """The (shortened) demo DAG run through ``--profile slurm`` into a fresh work directory."""
    workdir = tmp_path_factory.mktemp("demo")
    run_snakemake("all_tables", "--profile", "slurm", "--configfile", _short_config(workdir), "--directory", str(workdir),
                  "--jobs", "2", "--slurm-keep-successful-logs", env=slurm_env, timeout=2400)
    return workdir


def _local(*args: str, workdir: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    return run_snakemake(*args, "--configfile", str(workdir / SHORT_CONFIG), "--directory", str(workdir), "--cores", "2",
                         **kwargs)


def test_demo_dag_went_through_sbatch_and_produced_every_table(demo_dir: Path, slurm_env) -> None:
    tables = demo_dir / "demo" / "paper_tables"
    assert sorted(p.name for p in tables.iterdir() if not p.name.startswith(".")) == sorted(TABLE_FILES)
    slurm_logs = demo_dir / ".snakemake" / "slurm_logs"
    submitted = {p.name for p in slurm_logs.iterdir()}
    assert {"rule_train", "rule_evaluate", "rule_plan_and_preprocess", "rule_prepare_dataset"} <= submitted
    train_jobs = list((slurm_logs / "rule_train").rglob("*.log"))
    config = yaml.safe_load(Path(DEMO_CONFIG).read_text())
    trainings = (len(config["networks"]) + len(config["ablations"]["networks"])) * len(FOLDS)
    assert trainings == 4  # nnU-Net, S_k3, S_k5 and the resampling ablation, on fold 0
    assert len(train_jobs) == trainings  # one sbatch job per training
    state = Path(slurm_env["SLURM_CONF"]).parent
    controller_log = (state / "log" / "slurmctld.log").read_text()
    completed = set(re.findall(r"_job_complete: JobId=(\d+) WEXITSTATUS 0", controller_log))
    assert len(completed) == trainings + trainings + 2  # trainings, evaluations, data and planning; tables run locally
    table2 = pd.read_csv(tables / "table2.csv")
    assert "synthetic" not in set(table2["dataset"])  # the paper's table keeps the paper's rows (issue 12)
    assert table2.loc[table2["dataset"] == "btcv", "reproduced"].isna().all()  # not run: shown as missing
    assert "—" in (tables / "table2.md").read_text()


def test_kernel5_run_started_from_its_kernel3_fold_by_upkern(demo_dir: Path) -> None:
    results = demo_dir / "demo" / "nnUNet" / "nnUNet_results" / "Dataset990_SyntheticAbdomen"
    for fold in FOLDS:
        upkern = results / f"nnUNetTrainer_MedNeXt_S_k5__nnUNetPlans_1mm__3d_fullres/fold_{fold}/upkern.json"
        record = upkern.read_text()
        assert f"nnUNetTrainer_MedNeXt_S_k3__nnUNetPlans_1mm__3d_fullres/fold_{fold}/checkpoint_final.pth" in record


def test_rerun_after_completion_does_nothing(demo_dir: Path) -> None:
    result = _local("all_tables", "-n", workdir=demo_dir)
    assert "Nothing to be done" in result.stdout + result.stderr


def test_deleting_one_folds_metrics_reruns_only_its_downstream(demo_dir: Path) -> None:
    metrics = demo_dir / "demo" / "results" / "synthetic" / "MedNeXt-S_k3" / "fold_0" / "metrics.csv"
    before = pd.read_csv(metrics)
    metrics.unlink()
    counts = job_counts(_local("all_tables", "-n", workdir=demo_dir).stdout)
    assert counts == {"evaluate": 1, "summarize": 1, "provenance_table": 1, "results_tables": 1, "demo_figures": 1,
                      "all_tables": 1, "total": 6}
    _local("all_tables", workdir=demo_dir)
    pd.testing.assert_frame_equal(pd.read_csv(metrics), before)


def test_killed_training_resumes_on_rerun(demo_dir: Path, tmp_path: Path) -> None:
    """Kill the whole Snakemake process group mid-training; the rerun continues from checkpoint_latest."""
    fold = demo_dir / "demo/nnUNet/nnUNet_results/Dataset990_SyntheticAbdomen/nnUNetTrainer_MedNeXt_B_k3__nnUNetPlans_1mm__3d_fullres/fold_0"
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
