"""Benchmark: how long Snakemake takes to parse the workflow and plan the DAG (a dry run), paper grid and demo.

Every SLURM job of the paper grid re-parses the Snakefile (678 jobs), and every ``snakemake`` call a
user makes starts with it, so nothing heavy may run at parse time: no torch, pandas or MONAI import,
no data read. Target: the paper grid's dry run (``snakemake --profile slurm all_tables -n``) under 5 s
warm on 2 cores; the demo's likewise.

Printed per target: the median of ``--repeats`` warm runs (after one discarded warm-up), and, from the
same run as a reference for the machine's speed that day, ``snakemake --version`` (Snakemake's own
start-up, which the project cannot shorten) and the import of the workflow's Python modules.

Usage: ``python benchmarks/bench_dry_run.py [--repeats N]`` from the repository root.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TARGETS = {
    "paper grid (--profile slurm all_tables -n)": [SNAKEMAKE, "--profile", "slurm", "all_tables", "-n", "--quiet", "all"],
    "demo (all_tables -n --cores 2)": [SNAKEMAKE, "all_tables", "-n", "--cores", "2", "--quiet", "all"],
    "reference: snakemake --version": [SNAKEMAKE, "--version"],
    "reference: import the workflow's modules": [
        sys.executable, "-c",
        "import mednext.workflow.grid, mednext.workflow.layout, mednext.workflow.resources, "
        "mednext.workflow.targets, mednext.workflow.job_env, mednext.nnunet.job_settings; "
        "from mednext.networks import list_networks; list_networks()",
    ],
}


def seconds(command: list[str]) -> float:
    """Wall time of one run of ``command`` in the repository root (it must succeed)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'what':<46} {'median s':>9} {'min s':>7} {'max s':>7}  (warm, {args.repeats} runs, {os.cpu_count()} CPUs)")
    for label, command in TARGETS.items():
        seconds(command)  # warm-up: file-system and bytecode caches
        times = [seconds(command) for _ in range(args.repeats)]
        print(f"{label:<46} {statistics.median(times):>9.2f} {min(times):>7.2f} {max(times):>7.2f}", flush=True)


if __name__ == "__main__":
    main()
