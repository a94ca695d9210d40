"""``mednext-repro status``: where every training of a workflow config stands, read from disk (and squeue)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mednext.commands import DATASET_HELP, add_config_arguments, config_of, dataset_label


def register(subparsers: argparse._SubParsersAction) -> None:
    from mednext.workflow.config_source import DEMO_CONFIG

    parser = subparsers.add_parser(
        "status", help="one row per (dataset, network, fold): state, epoch, last checkpoint, EMA pseudo-Dice, hours, ETA",
        description="Reads only files (fold folders, metrics, Snakemake's markers and logs), so it runs on a login "
                    "node while the grid trains; asks squeue which jobs are queued or running when it is installed.")
    add_config_arguments(parser, DEMO_CONFIG, "the one the grid runs with (default: the demo's, as the Snakefile)")
    parser.add_argument("--workdir", type=Path, default=Path("."),
                        help="the folder Snakemake runs in (holds .snakemake/; relative config paths start there)")
    parser.add_argument("--dataset", action="append", default=[],
                        help=f"show only this {DATASET_HELP} (repeatable)")
    parser.add_argument("--network", action="append", default=[], help="show only this network (repeatable)")
    parser.add_argument("--state", action="append", default=[],
                        help="show only this state (repeatable): waiting, not_started, queued, running, interrupted, "
                             "failed, diverged, finished, evaluated")
    parser.add_argument("--gpus", type=int, help="GPUs the remaining trainings share, for the ETA (default: as many "
                                                 "as run now, at least 1)")
    parser.add_argument("--squeue", action=argparse.BooleanOptionalAction, default=None,
                        help="ask squeue for queued/running jobs (default: when squeue is installed)")
    parser.add_argument("--csv", type=Path, help="also write the (filtered) rows as CSV, e.g. status.csv")
    parser.add_argument("--picture", type=Path, help="also draw the dataset x network grid as PNG")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mednext.status.fold_state import State
    from mednext.status.grid_status import collect_status
    from mednext.status.render import filter_rows, format_table, summary_lines, write_status_csv
    from mednext.status.slurm_queue import query_squeue

    known = {s.value for s in State}
    unknown = sorted(set(args.state) - known)
    if unknown:
        raise SystemExit(f"status: unknown state(s) {unknown}; choose from {', '.join(s.value for s in State)}")
    if args.gpus is not None and args.gpus < 1:
        raise SystemExit(f"status: --gpus must be at least 1, got {args.gpus}")
    started = time.perf_counter()
    config, _ = config_of(args)
    queue = query_squeue() if args.squeue is not False else None
    if args.squeue and queue is None:
        print("status: squeue is not available; states come from the files only", file=sys.stderr)
    status = collect_status(config, args.workdir, queue=queue, gpus=args.gpus)
    rows = filter_rows(status.rows, [dataset_label(d) for d in args.dataset], args.network, args.state)
    print(format_table(rows) if rows else "no training matches the filters\n", end="")
    print("\n".join(summary_lines(status)))
    if args.csv:
        write_status_csv(rows, args.csv)
        print(f"wrote {args.csv}")
    if args.picture:
        from mednext.status.picture import draw_status

        draw_status(status, args.picture, title="Training grid" if args.config_json else f"Training grid of {args.config.name}")
        print(f"wrote {args.picture}")
    print(f"({len(status.rows)} fold folders read in {time.perf_counter() - started:.2f} s)")
    return 0
