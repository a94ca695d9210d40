"""``figures``: what the runs did, as pictures (training curves, DSC per class, UpKern start)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("figures", help="training curves, DSC per class and UpKern start of finished runs")
    parser.add_argument("--run", nargs=4, action="append", default=[], required=True,
                        metavar=("DATASET", "NETWORK", "FOLD", "CHECKPOINT"),
                        help="a training: dataset key, network name, fold, its checkpoint_final.pth (repeat)")
    parser.add_argument("--metrics", nargs="+", required=True, help="tidy metrics.csv files of the evaluate step")
    parser.add_argument("--out-dir", required=True, help="folder for the PNGs")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mednext.tables.run_figures import FigureInputError, write_run_figures

    try:
        for path in write_run_figures([(d, n, int(f), c) for d, n, f, c in args.run], args.metrics, args.out_dir):
            print(path)
    except FigureInputError as error:
        raise SystemExit(f"figures: {error}") from None
    return 0
