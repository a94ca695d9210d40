"""``mednext-repro provenance``: collect the runs' ``provenance.json`` into ``provenance.csv``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("provenance", help="one CSV row per (dataset, network, fold) from the runs' provenance.json")
    parser.add_argument("runs", nargs="+", type=Path,
                        help="run folders results/<dataset>/<network>/fold_<F> (or their metrics.csv)")
    parser.add_argument("--out", type=Path, default=Path("paper_tables/generated/provenance.csv"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mednext.provenance import ProvenanceError
    from mednext.tables.provenance_table import write_provenance_table

    try:
        print(f"wrote {write_provenance_table(args.runs, args.out)}")
    except ProvenanceError as error:
        raise SystemExit(f"mednext-repro provenance: error: {error}") from None
    return 0
