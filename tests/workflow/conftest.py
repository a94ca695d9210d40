"""Helpers to run the real Snakemake CLI on the project's Snakefile."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def run_snakemake(*args: str, cwd: Path = REPO, timeout: int = 600, check: bool = True,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``snakemake ARGS`` (targets first: --configfile takes several values) and return the result."""
    result = subprocess.run([SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Parse the "Job stats" block of a dry run into {rule: count}."""
    block = dry_run_output[dry_run_output.index("Job stats:"):]
    counts = {}
    for line in block.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
    return counts


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory) -> dict[str, str]:
    """A one-node SLURM (slurmctld + slurmd + munge, tools/local_slurm.sh) for one test module; its
    environment (``SLURM_CONF``) for the Snakemake calls. Skipped where it cannot be installed (no root)."""
    if shutil.which("sbatch") is None and os.geteuid() != 0:
        pytest.skip("SLURM is not installed and installing it needs root")
    state = tmp_path_factory.mktemp("slurm")
    subprocess.run([str(REPO / "tools" / "local_slurm.sh"), "start", str(state)], check=True, timeout=900)
    yield {**os.environ, "SLURM_CONF": str(state / "slurm.conf")}
    subprocess.run([str(REPO / "tools" / "local_slurm.sh"), "stop", str(state)], check=False, timeout=60)


def train_job_of(dry_run_line: str) -> str:
    """The job (JSON) a ``train`` command of a dry run (``-p``) hands its training process: the same command,
    with ``--print-job``, run in the repository (it prints the job and exits without training)."""
    words = shlex.split(dry_run_line.split("Shell command: ", 1)[-1].split(" >> ", 1)[0])
    env = dict(os.environ)
    while words[0] == "env" or "=" in words[0].split("/")[0]:
        if words[0] != "env":
            name, _, value = words[0].partition("=")
            env[name] = value
        words = words[1:]
    result = subprocess.run([*words, "--print-job"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail(f"train --print-job failed ({result.returncode}): {result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]
