"""squeue's answer is matched to training jobs by the comment Snakemake's SLURM executor gives them."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from snakemake.iocontainers import Wildcards
from snakemake_executor_plugin_slurm.utils import get_job_wildcards

from mednext.status.slurm_queue import parse_squeue, query_squeue, train_job_comment
from mednext.workflow.layout import Layout

LAYOUT = Layout(Path("w"), Path("d"), Path("r"), Path("t"), Path("l"), "nnUNetPlans_1mm")


def test_comment_is_the_executors_for_a_train_job() -> None:
    values = {"dataset_folder": "Dataset017_BTCV", "trainer": "nnUNetTrainer_MedNeXt_B_k5", "configuration": "3d_fullres",
              "fold": "3"}
    order = re.findall(r"{(\w+)}", LAYOUT.checkpoint_pattern())  # Snakemake keeps the output pattern's order
    job = SimpleNamespace(wildcards=Wildcards(fromdict={name: values[name] for name in order}))
    assert train_job_comment("Dataset017_BTCV", "nnUNetTrainer_MedNeXt_B_k5", "3d_fullres", 3) == \
        f"rule_train_wildcards_{get_job_wildcards(job)}"


def test_parse_squeue_lines() -> None:
    jobs = parse_squeue("812|PENDING|rule_train_wildcards_a_b_3d_fullres_0\n\n813|RUNNING|rule_evaluate_wildcards_x\n")
    assert [(j.job_id, j.state, j.pending) for j in jobs] == [("812", "PENDING", True), ("813", "RUNNING", False)]
    assert jobs[0].comment == "rule_train_wildcards_a_b_3d_fullres_0"


def test_query_runs_squeue_for_this_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in squeue (no cluster here) records its arguments and answers like the real one."""
    fake = tmp_path / "squeue"
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\necho "9|RUNNING|rule_train_wildcards_x"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    jobs = query_squeue()
    assert (tmp_path / "args").read_text().split() == ["--me", "--noheader", "--format=%i|%T|%k"]
    assert [(j.job_id, j.state) for j in jobs] == [("9", "RUNNING")]
    fake.write_text("#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller' >&2\nexit 1\n")
    assert query_squeue() is None
    assert query_squeue("no-such-squeue") is None
