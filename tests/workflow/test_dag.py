"""The paper's DAG, planned by the real Snakemake, and its targets and resources."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from mednext.workflow import resources as res
from mednext.workflow.config_source import load_workflow_config
from mednext.workflow.layout import dataset_of_folder, run_from_checkpoint_wildcards
from tests.workflow.conftest import REPO, job_counts, run_snakemake, train_job_of


@pytest.fixture(scope="module")
def paper_dry_run() -> str:
    """``snakemake --profile slurm all_tables -n`` from the repository root, as a user runs it."""
    return run_snakemake("all_tables", "-n", "--profile", "slurm", "--forceall").stdout


def test_paper_grid_job_count_per_rule(paper_dry_run: str) -> None:
    counts = job_counts(paper_dry_run)
    # 4 datasets x 15 networks x 5 folds + 2 datasets x 3 ablations x 5 folds
    assert counts["train"] == 4 * 15 * 5 + 2 * 3 * 5 == 330
    assert counts["evaluate"] == 330
    assert counts["prepare_dataset"] == 4 and counts["plan_and_preprocess"] == 4 and counts["write_splits"] == 4
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
    assert counts == {"prepare_dataset": 1, "plan_and_preprocess": 1, "write_splits": 1, "train": 2, "evaluate": 1,
                      "total": 6}


def test_unknown_network_in_config_is_one_clear_error(tmp_path) -> None:
    config = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    config["networks"].append("MedNeXt-XL_k7")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = run_snakemake("all_tables", "-n", "--cores", "1", "--configfile", str(bad), check=False)
    assert result.returncode != 0
    assert "unknown network 'MedNeXt-XL_k7'" in result.stdout + result.stderr


def test_fold_outside_the_cross_validation_is_reported(tmp_path) -> None:
    config = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    config["folds"] = [0, 7]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = run_snakemake("all_tables", "-n", "--cores", "1", "--configfile", str(bad), check=False)
    assert result.returncode != 0 and "folds [7] are not among the 5 cross-validation folds 0-4" in result.stdout + result.stderr


def test_gpu_hours_command_sums_the_grid() -> None:
    result = subprocess.run([sys.executable, "-m", "mednext", "gpu-hours", "--config", "config/paper.yaml"],
                            cwd=REPO, capture_output=True, text=True, check=True, timeout=300)
    assert "total: 330 training jobs" in result.stdout and "on one NVIDIA A100 40 GB" in result.stdout
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[2:] if line.strip()}
    # MedNeXt-L_k5: 735 s/epoch x 1000 epochs = 204.2 h per run, 20 runs; Revisited measured 233 h
    assert rows["MedNeXt-L_k5"][:3] == ["20", "204.2", "4,083.3"] and rows["MedNeXt-L_k5"][-1] == "233.0"
    assert rows["MedNeXt-L_k3"][1] == "74.2" and rows["MedNeXt-L_k3"][-1] == "68.0"  # 267 s/epoch vs 68 h
    # nnU-Net Revisited, A100 hours per training (docs/sources.md#revisited-hours)
    for network, hours in {"nnUNet": "9.0", "SwinUNETR": "15.0", "nnFormer": "8.0"}.items():
        assert rows[network][1] == hours and rows[network][-1] == hours
    assert "retries: 4 in the profile" in result.stdout


def test_profile_retries_let_mednext_l_k5_finish() -> None:
    """Attempts x the per-attempt runtime cover Revisited's 233 A100 hours for L k5."""
    profile = yaml.safe_load((REPO / "slurm" / "config.yaml").read_text())
    config = load_workflow_config(REPO / "config" / "paper.yaml")
    per_attempt_h = res.train_runtime_minutes("MedNeXt-L_k5", config, attempt=1) / 60
    assert per_attempt_h == 72  # capped at the partition limit
    assert res.train_runtime_minutes("MedNeXt-L_k5", config, attempt=3) / 60 == 72  # resumes: no growth needed
    attempts = profile["retries"] + 1
    assert attempts * per_attempt_h >= 233 * 1.2  # Revisited's measured hours, with margin
    assert (attempts - 1) * per_attempt_h >= 233  # and even with one attempt lost to a failure
    assert profile["retries"] == res.retries_needed(config)
    assert profile.get("slurm-requeue") is True and profile["slurm-status-command"] == "squeue"
    # a short training asks for its estimate x safety: nnU-Net, 9 A100 hours (Revisited) -> 10.8 h
    assert res.train_runtime_minutes("nnUNet", config) == 648


def test_demo_runtime_policy_is_unchanged() -> None:
    config = load_workflow_config(REPO / "config" / "demo.yaml")
    assert [res.train_runtime_minutes("MedNeXt-S_k3", config, attempt=a) for a in (1, 2)] == [30, 60]


# --- one complete config per run, resources as mednext.workflow.resources computes ---

def _head_node_rules() -> set[str]:
    """Rules marked ``localrule: True`` or without a command (targets), read from the rule files."""
    local = set()
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        for body in re.split(r"^rule ", path.read_text(), flags=re.MULTILINE)[1:]:
            name = body.split(":", 1)[0]
            if "localrule: True" in body or not re.search(r"^\s+(shell|run|script):", body, flags=re.MULTILINE):
                local.add(name)
    return local


#: Rules run on the head node: Snakemake gives them the profile's default-resources.
LOCAL_RULES = _head_node_rules()


def _job_resources(dry_run: str) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """(rule, wildcards, resources) of every job block in a ``snakemake -n`` output."""
    jobs = []
    for block in re.split(r"^\[\w{3} \w{3} [^\]]*\d{4}\]$", dry_run, flags=re.MULTILINE):  # "[Tue Dec  1 ...]"
        rule = re.search(r"^(?:local)?rule (\w+):", block, flags=re.MULTILINE)
        if not rule:
            continue
        fields = {}
        for key in ("wildcards", "resources"):
            line = re.search(rf"^\s+{key}: (.*)$", block, flags=re.MULTILINE)
            fields[key] = dict(item.split("=", 1) for item in line.group(1).split(", ")) if line else {}
        jobs.append((rule.group(1), fields["wildcards"], fields["resources"]))
    return jobs


def _expected(rule: str, wildcards: dict[str, str], config: dict, profile_defaults: dict) -> dict[str, int]:
    merged = res.merged_resources(config)
    # the data, planning and evaluation requests: the config's (planning workers capped to fit it), or a
    # calibration's where one exists (mednext.workflow.resources; tests/workflow/test_calibration.py)
    if rule in ("prepare_dataset", "plan_and_preprocess"):
        request = (res.prepare_request if rule == "prepare_dataset" else res.plan_request)(
            dataset_of_folder(wildcards["dataset_folder"]), config)
        return {"mem_mb": request.mem_mb, "runtime": request.runtime_min}
    if rule == "evaluate":
        request = res.evaluate_request(wildcards["dataset"], config)
        return {"mem_mb": request.mem_mb, "runtime": request.runtime_min}
    if rule == "train":
        network = run_from_checkpoint_wildcards(wildcards["dataset_folder"], wildcards["trainer"], wildcards["fold"]).network
        cuda = config["device"] == "cuda"
        return {"mem_mb": res.train_mem_mb(network, config), "runtime": res.train_runtime_minutes(network, config, 1),
                "gpu": 1 if cuda else 0, "cpus_per_gpu": merged["cpus_per_gpu"] if cuda else 0}
    assert rule in LOCAL_RULES, f"rule {rule} has no expected resources in this test"
    return {key: int(profile_defaults[key]) for key in ("mem_mb", "runtime") if key in profile_defaults}


@pytest.mark.parametrize("run", ["paper", "demo"])
def test_every_jobs_resources_come_from_its_own_config(run: str, paper_dry_run: str) -> None:
    """No demo value in the paper run, no paper value in the demo, rule by rule."""
    if run == "paper":
        output, config = paper_dry_run, load_workflow_config(REPO / "config" / "paper.yaml")
        profile_defaults = yaml.safe_load((REPO / "slurm" / "config.yaml").read_text())["default-resources"]
    else:  # make demo: no --configfile at all
        output = run_snakemake("all_tables", "-n", "--forceall", "--cores", "2").stdout
        config, profile_defaults = load_workflow_config(REPO / "config" / "demo.yaml"), {}
    jobs = _job_resources(output)
    assert sum(rule == "train" for rule, _, _ in jobs) == (330 if run == "paper" else 8)
    for rule, wildcards, resources in jobs:
        expected = _expected(rule, wildcards, config, profile_defaults)
        assert {k: int(resources[k]) for k in expected} == expected, (rule, wildcards)
    data_jobs = [r for rule, _, r in jobs if rule in ("prepare_dataset", "plan_and_preprocess")]
    if run == "paper":
        # BraTS21 is 1251 cases (~15 GB): the demo's 3 GB / 30 min must not reach the paper's data jobs
        assert all(int(r["mem_mb"]) >= 16000 and int(r["runtime"]) >= 120 for r in data_jobs)
    else:
        assert all(int(r["mem_mb"]) == 3000 and int(r["runtime"]) == 30 for r in data_jobs)


def test_two_config_files_are_refused(tmp_path) -> None:
    """Snakemake would merge them key by key: one complete file per run."""
    partial = tmp_path / "partial.yaml"
    partial.write_text("training: {epochs: 4}\n")
    result = run_snakemake("all_tables", "-n", "--cores", "1", "--configfile", str(REPO / "config" / "demo.yaml"),
                           str(partial), check=False)
    assert result.returncode != 0 and "give one complete workflow config, not 2" in result.stdout + result.stderr


def test_missing_optional_training_keys_get_schema_defaults_not_demo_values(tmp_path) -> None:
    """A paper config without a training section gets the official protocol on the train command line:
    §3.1's 1000 x 250 schedule and the official speed knobs, never the demo file's values."""
    config = load_workflow_config(REPO / "config" / "paper.yaml")
    config["training"] = {}
    config.update(datasets=["btcv"], networks=["MedNeXt-L_k3"], folds=[0], ablations={})
    path = tmp_path / "paper_min.yaml"
    path.write_text(yaml.safe_dump(config))
    out = run_snakemake("all_tables", "-n", "-p", "--forceall", "--cores", "1", "--configfile", str(path)).stdout
    command = next(line for line in out.splitlines() if " train --dataset " in line)
    job = json.loads(train_job_of(command))
    assert job["dataset"] == "btcv"
    settings = job["settings"]
    assert (settings["epochs"], settings["iterations_per_epoch"], settings["val_iterations"]) == (1000, 250, 50)
    assert settings["tta_mirroring"] is True and settings["compile"] is False
    assert ((settings["checkpoint_minutes"], settings["gradient_checkpointing"], settings["autocast_dtype"])
            == (30, "auto", "float16"))
    assert settings["channels_last"] is False


def test_jobs_get_nnunet_folders_and_config_hashes_on_their_command_line(tmp_path) -> None:
    """No os.environ hand-over at parse time: each command names the config's folders itself."""
    config = load_workflow_config(REPO / "config" / "demo.yaml")
    config["paths"] = {key: str(tmp_path / "my runs" / key) for key in config["paths"]}
    path = tmp_path / "demo copy.yaml"
    path.write_text(yaml.safe_dump(config))
    elsewhere = {**os.environ, "nnUNet_raw": "/elsewhere/raw", "nnUNet_preprocessed": "/elsewhere/pre",
                 "nnUNet_results": "/elsewhere/results"}
    out = run_snakemake("all_tables", "-n", "-p", "--forceall", "--cores", "1", "--configfile", str(path), env=elsewhere).stdout
    nnunet = tmp_path / "my runs" / "nnunet"
    expected = {f"{name}={nnunet / name}" for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    for command in (" plan --dataset ", " train --dataset ", " evaluate --gt "):
        line = next(line for line in out.splitlines() if command in line)
        words = shlex.split(line.split("Shell command: ", 1)[-1])
        assert words[0] == "env" and expected <= set(words), (command, line)
        assert any(w.startswith("MEDNEXT_CONFIG_SHA256=") for w in words)  # provenance: which config ran the job
        assert not any(w.startswith(("nnUNet_raw=/elsewhere", "nnUNet_results=/elsewhere")) for w in words)
    splits = shlex.split(next(line for line in out.splitlines() if " data splits --dataset " in line)
                         .split("Shell command: ", 1)[-1])
    assert splits[splits.index("--raw-root") + 1] == str(nnunet / "nnUNet_raw")
    assert splits[splits.index("--preprocessed-root") + 1] == str(nnunet / "nnUNet_preprocessed")


def test_upkern_parents_are_scheduled_first() -> None:
    """Runs another run starts from (the registry's ``init_from``) get priority 1, the rest 0."""
    from mednext.networks import get_network
    from mednext.workflow.grid import all_runs, scheduling_priority, upkern_parents

    config = load_workflow_config(REPO / "config" / "paper.yaml")
    runs = all_runs(config)
    parents = {(r.dataset, get_network(r.network).init_from, r.fold) for r in runs if get_network(r.network).init_from}
    assert {("btcv", "MedNeXt-B_k3", 0), ("kits19", "MedNeXt-L_k3", 4)} <= parents
    computed = upkern_parents(config)
    for run in runs:
        assert scheduling_priority(run, computed) == int((run.dataset, run.network, run.fold) in parents), run
