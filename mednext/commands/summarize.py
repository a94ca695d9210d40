"""``summarize``: per-fold and cross-fold summaries of tidy result CSVs (from ``evaluate``)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("summarize", help="per-fold and cross-fold summaries of tidy result CSVs")
    s.add_argument("csv", nargs="+", help="tidy result CSVs (from 'evaluate')")
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mednext.evaluation.results import write_summaries

    for path in write_summaries(args.csv, args.out_dir):
        print(path)
    return 0
