"""``record-leaderboard``: record a score a challenge leaderboard returned (for the test-set table)."""

from __future__ import annotations

import argparse

from mednext.commands import add_dataset_argument, dataset_label


def register(subparsers: argparse._SubParsersAction) -> None:
    from mednext.evaluation.leaderboard import DEFAULT_LEADERBOARD_CSV

    r = subparsers.add_parser("record-leaderboard", help="record a score returned by a challenge leaderboard")
    r.add_argument("--csv", default=str(DEFAULT_LEADERBOARD_CSV))
    add_dataset_argument(r)
    r.add_argument("--network", required=True)
    r.add_argument("--metric", required=True, help="e.g. DSC, NSD, HD95")
    r.add_argument("--value", required=True, type=float)
    r.add_argument("--split", default="test")
    r.add_argument("--submission", default="", help="the submitted zip or an id")
    r.add_argument("--note", default="")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mednext.evaluation.leaderboard import record_leaderboard_score

    table = record_leaderboard_score(args.csv, dataset_label(args.dataset), args.network, args.metric, args.value,
                                     split=args.split, submission=args.submission, note=args.note)
    print(f"{args.csv}: {len(table)} scores recorded")
    return 0
