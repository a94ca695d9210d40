"""``mednext-repro tables``: regenerate Table 2, Table 1 (right), the test-set table, the table of other datasets and
the significance table."""

from __future__ import annotations

import argparse
from pathlib import Path

from mednext.statistics.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED
from mednext.vocabulary import N_FOLDS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tables", help=__doc__.split(": ", 1)[1])
    parser.add_argument("metrics", type=Path, nargs="*",
                        help="per-case metrics.csv files from `evaluate` (none: every reproduced cell is —)")
    parser.add_argument("--reported", type=Path, default=Path("paper_tables/reported"))
    parser.add_argument("--out-dir", type=Path, default=Path("paper_tables/generated"))
    parser.add_argument("--spacing-mode", choices=["paper", "physical"], default="paper",
                        help="surface-Dice spacing mode compared with the paper (default: paper, as its evaluation)")
    parser.add_argument("--folds", type=int, default=N_FOLDS, help=f"folds that make a row complete (default {N_FOLDS})")
    parser.add_argument("--leaderboard", type=Path, default=Path("paper_tables/leaderboard_scores.csv"),
                        help="scores recorded with record-leaderboard (optional)")
    parser.add_argument("--provenance", type=Path, default=None,
                        help="provenance.csv (dataset, network, fold, git_commit, ...): adds provenance_key, "
                             "mixed_commits and commits to every table row (optional)")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES,
                        help=f"bootstrap resamples per CI (default {DEFAULT_RESAMPLES})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="bootstrap seed")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mednext.tables.results_tables import write_all_tables

    missing = [str(p) for p in args.metrics if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: metrics file not found"
                                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if args.provenance is not None and not args.provenance.is_file():
        raise FileNotFoundError(f"{args.provenance}: provenance table not found")
    for path in write_all_tables(args.reported, args.metrics, args.out_dir, args.spacing_mode, args.folds,
                                 args.leaderboard, args.provenance, args.resamples, args.seed):
        print(f"wrote {path}")
    return 0
