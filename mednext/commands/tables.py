"""``mednext-repro tables``: regenerate Table 2, Table 1 (right) and the test-set table, reproduced vs reported."""

from __future__ import annotations

import argparse
from pathlib import Path

from mednext.tables.results_tables import write_all_tables


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tables", help=__doc__.split(": ", 1)[1])
    parser.add_argument("--per-fold", type=Path, default=None,
                        help="summary_per_fold.csv from `summarize` (missing: every reproduced cell is —)")
    parser.add_argument("--reported", type=Path, default=Path("paper_tables/reported"))
    parser.add_argument("--out-dir", type=Path, default=Path("paper_tables/generated"))
    parser.add_argument("--spacing-mode", choices=["paper", "physical"], default="paper",
                        help="surface-Dice spacing mode compared with the paper (default: paper, as its evaluation)")
    parser.add_argument("--folds", type=int, default=5, help="folds that make a row complete")
    parser.add_argument("--leaderboard", type=Path, default=Path("paper_tables/leaderboard_scores.csv"),
                        help="scores recorded with record-leaderboard (optional)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for path in write_all_tables(args.reported, args.per_fold, args.out_dir, args.spacing_mode, args.folds,
                                 args.leaderboard):
        print(f"wrote {path}")
    return 0
