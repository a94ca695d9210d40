"""``mednext-repro table1``: regenerate Table 1 (left), configurations with parameters and GFLOPs."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("table1", help=__doc__.split(": ", 1)[1])
    parser.add_argument("--reported", type=Path, default=Path("paper_tables/reported/table1_configs.csv"))
    parser.add_argument("--out-dir", type=Path, default=Path("paper_tables/generated"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mednext.tables.render import write_table
    from mednext.tables.table1_configs import CAPTION, TITLE, build_table1_configs

    table = build_table1_configs(args.reported)
    for path in write_table(table, args.out_dir, "table1_configs", TITLE, CAPTION):
        print(f"wrote {path}")
    print(table.to_string(index=False))
    return 0
