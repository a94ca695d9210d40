"""Benchmark: the CPU rehearsal of one dataset at real size, with the figures it measures.

Runs every CPU stage of ``mednext-repro rehearse`` (conversion, nnU-Net fingerprint + planning +
preprocessing with the config's workers capped at ``--max-workers``, the splits of the full case
count, evaluation of every region) on ``--cases`` cases of ``--dataset`` (stand-ins at the
dataset's real geometry unless its data is on disk), in a scratch folder, and prints per stage and
case the wall time and the peaks: the summed memory of the process tree and the largest worker's.
Nothing is written to the project (no report, no calibration). Target (README, "Rehearsal"): one
dataset at K = 3 in under 15 minutes on 2 cores. Heavy: a KiTS19 preprocessing worker peaks near
11 GB; run it alone on the machine.

Usage: ``python benchmarks/bench_rehearsal.py [--dataset kits19] [--cases 3] [--max-workers 2]
[--config config/paper.yaml]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

TARGET_MIN = 15


def main() -> None:
    from mednext.rehearsal.engine import Rehearsal
    from mednext.workflow.config_source import load_workflow_config
    from mednext.workflow.grid import check_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config/paper.yaml"))
    parser.add_argument("--dataset", default="kits19")
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--max-workers", type=int, default=2)
    args = parser.parse_args()
    config = load_workflow_config(args.config)
    check_config(config, str(args.config))
    with tempfile.TemporaryDirectory(prefix="bench_rehearsal_") as scratch:
        rehearsal = Rehearsal(config, Path(scratch), args.cases, args.max_workers)
        start = time.perf_counter()
        source, stages = rehearsal.dataset(args.dataset)
        total = time.perf_counter() - start
    print(f"\n{args.dataset}: {source.kind}, {args.cases} cases, planning with {rehearsal.planning_workers()} workers")
    print(f"{'stage':<20} {'case':<12} {'detail':<28} {'wall s':>8} {'sum GB':>8} {'worker/case GB':>15}")
    for stage in stages:
        print(f"{stage.stage:<20} {'(stage)':<12} {'':<28} {stage.wall_s:8.1f} {stage.peak_sum_mb / 1000:8.2f} "
              f"{max(stage.worker_peak_mb, stage.case_peak_mb()) / 1000:15.2f}")
        for case in stage.cases:
            print(f"{'':<20} {case.case:<12} {case.detail[-28:]:<28} {case.wall_s:8.1f} {'':>8} "
                  f"{(case.peak_mb or 0) / 1000:15.2f}")
    print(f"total {total / 60:.1f} min (target < {TARGET_MIN} min on 2 cores for one dataset at K = 3)")


if __name__ == "__main__":
    main()
