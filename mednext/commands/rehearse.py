"""``mednext-repro rehearse``: run every stage of the configured grid on a few real-size cases, measure
it, predict every job of the DAG, compare with what it requests, and write the calibration."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mednext.commands import add_config_arguments, config_of


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rehearse", help="measure every stage on a few real-size cases before the paper run")
    add_config_arguments(parser, Path("config/paper.yaml"), "the grid to rehearse (default config/paper.yaml)")
    parser.add_argument("--cases", type=int, default=3,
                        help="cases per dataset (default 3: the smallest, the median and the largest at the planned spacing)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: also the GPU stages (training iterations, one sliding-window prediction)")
    parser.add_argument("--stages", nargs="+", choices=("cpu", "gpu", "report"), default=None,
                        help="which stages (default: cpu, plus gpu with --device cuda); a cluster runs a CPU job "
                             "and a GPU job, each adding to the same report and calibration; report: none, only "
                             "the report and verdict from what was measured so far")
    parser.add_argument("--no-fail", action="store_true",
                        help="exit 0 even when jobs would not fit (the verdict is in the report)")
    parser.add_argument("--datasets", nargs="+", default=None, help="only these datasets of the config (CPU stages)")
    parser.add_argument("--no-tables", action="store_true", help="skip the full-grid summaries and tables")
    parser.add_argument("--max-workers", type=int, default=None,
                        help="cap planning workers on this machine (the prediction still uses the DAG's workers)")
    parser.add_argument("--iterations", type=int, default=20, help="timed training iterations per GPU run")
    parser.add_argument("--out", type=Path, default=None,
                        help="report folder (default: the folder of the config's calibration file)")
    parser.add_argument("--keep-work", action="store_true", help="keep the scratch data of every stage")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mednext.rehearsal.engine import Rehearsal, cpu_stages
    from mednext.rehearsal.session import finish, requests
    from mednext.workflow.calibration import calibration_path
    from mednext.workflow.grid import datasets_of

    if args.cases < 1:
        raise SystemExit("rehearse: --cases must be at least 1")
    config, source = config_of(args)
    out_dir = args.out or calibration_path(config).parent
    stages = set(args.stages or (["cpu", "gpu"] if args.device == "cuda" else ["cpu"]))
    unknown = sorted(set(args.datasets or []) - set(datasets_of(config)))
    if unknown:
        raise SystemExit(f"rehearse: {', '.join(unknown)} not in the datasets of {source}")
    before = requests(config)
    header = [f"Config: {source}; {args.cases} case(s) per dataset."]
    measurements, gpu = [], None
    if "cpu" in stages:
        rehearsal = Rehearsal(config, out_dir, args.cases, args.max_workers, keep_work=args.keep_work)
        sources, measurements = cpu_stages(rehearsal, args.datasets, tables=not args.no_tables)
        header += [f"- {key}: {origin.description}" for key, origin in sources.items()]
    if "gpu" in stages:
        from mednext.rehearsal.gpu import gpu_stages

        gpu = gpu_stages(config, args.device, args.iterations, out_dir)
    outcome = finish(config, out_dir, measurements, gpu, before, header)
    for path in outcome.files:
        print(f"wrote {path}")
    if outcome.failed and not args.no_fail:
        print(f"{len(outcome.failed)} job group(s) would not fit their request:", file=sys.stderr)
        for row in outcome.failed:
            print(row.failure_line(), file=sys.stderr)
        print(f"the calibration in {outcome.calibration} makes the DAG request what was measured "
              "(see `snakemake ... -n`)", file=sys.stderr)
        return 1
    return 0

