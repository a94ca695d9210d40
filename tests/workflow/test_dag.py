"""The paper's DAG, planned by the real Snakemake (issue 7, item 1), and its targets and resources."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.workflow.conftest import REPO, job_counts, run_snakemake


@pytest.fixture(scope="module")
def paper_dry_run() -> str:
    """``snakemake --profile slurm all_tables -n`` from the repository root, as a user runs it."""
    return run_snakemake("all_tables", "-n", "--profile", "slurm", "--forceall").stdout


def test_paper_grid_job_count_per_rule(paper_dry_run: str) -> None:
    counts = job_counts(paper_dry_run)
    # 4 datasets x 15 networks x 5 folds + 2 datasets x 3 ablations x 5 folds
    assert counts["train"] == 4 * 15 * 5 + 2 * 3 * 5 == 330
    assert counts["evaluate"] == 330
    assert counts["prepare_dataset"] == 4 and counts["plan_and_preprocess"] == 4
    assert counts["summarize"] == counts["results_tables"] == counts["table1_configs"] == counts["all_tables"] == 1


def test_training_jobs_request_one_gpu_and_size_dependent_resources(paper_dry_run: str) -> None:
    train_blocks = [b for b in paper_dry_run.split("\n\n") if "rule train:" in b]
    assert len(train_blocks) == 330
    assert all("gpu=1" in b and "cpus_per_gpu=8" in b for b in train_blocks)
    large = next(b for b in train_blocks if "nnUNetTrainer_MedNeXt_L_k5__" in b)
    small = next(b for b in train_blocks if "nnUNetTrainer_MedNeXt_S_k3__" in b)
    assert "mem_mb=96000" in large and "mem_mb=32000" in small
    assert "runtime=4320" in large  # 204 h estimate, capped at the 72 h partition limit; retries resume


def test_kernel5_training_waits_for_the_same_fold_kernel3_checkpoint(paper_dry_run: str) -> None:
    block = next(b for b in paper_dry_run.split("\n\n")
                 if "rule train:" in b and "Dataset040_KiTS19/nnUNetTrainer_MedNeXt_M_k5__" in b and "fold_3/" in b)
    assert "Dataset040_KiTS19/nnUNetTrainer_MedNeXt_M_k3__nnUNetPlans_1mm__3d_fullres/fold_3/checkpoint_final.pth" in block


@pytest.mark.parametrize(("target", "expected_train"), [
    ("ablation_resampling", 2 * 2 * 5),     # standard resampling + MedNeXt-B_k3 on BTCV, AMOS22
    ("ablation_upkern", 3 * 2 * 5),         # k5 scratch, k5 UpKern and its k3 parent
    ("ablation_twice", 3 * 2 * 5),          # k3 twice, k5 UpKern, and their k3 parent
])
def test_single_ablation_targets(target: str, expected_train: int) -> None:
    counts = job_counts(run_snakemake(target, "-n", "--profile", "slurm", "--forceall").stdout)
    assert counts["train"] == expected_train
    assert "results_tables" not in counts


def test_single_fold_file_target() -> None:
    target = "results/btcv/MedNeXt-B_k5/fold_2/metrics.csv"
    counts = job_counts(run_snakemake(target, "-n", "--profile", "slurm", "--forceall").stdout)
    assert counts == {"prepare_dataset": 1, "plan_and_preprocess": 1, "train": 2, "evaluate": 1, "total": 5}


def test_unknown_network_in_config_is_one_clear_error(tmp_path) -> None:
    config = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    config["networks"].append("MedNeXt-XL_k7")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = run_snakemake("all_tables", "-n", "--cores", "1", "--configfile", str(bad), check=False)
    assert result.returncode != 0
    assert "unknown network 'MedNeXt-XL_k7'" in result.stdout + result.stderr


def test_schema_violation_is_reported(tmp_path) -> None:
    config = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    config["folds"] = [0, 7]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = run_snakemake("all_tables", "-n", "--cores", "1", "--configfile", str(bad), check=False)
    assert result.returncode != 0 and "7 is greater than the maximum of 4" in result.stdout + result.stderr


def test_gpu_hours_command_sums_the_grid() -> None:
    result = subprocess.run([sys.executable, "-m", "mednext", "gpu-hours", "--config", "config/paper.yaml"],
                            cwd=REPO, capture_output=True, text=True, check=True, timeout=300)
    assert "total: 330 training jobs" in result.stdout
    # MedNeXt-L_k5: 735 s/epoch x 1000 epochs = 204.2 h per run, 20 runs
    line = next(l for l in result.stdout.splitlines() if l.strip().startswith("MedNeXt-L_k5"))
    assert line.split()[1:] == ["20", "4,083.3"]
