"""``package-submission``: rename/relabel predictions as a challenge expects them and zip them."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from mednext.evaluation.submission import CHALLENGES

    k = subparsers.add_parser("package-submission", help="rename/relabel predictions per challenge and zip them")
    k.add_argument("--pred", required=True, help="folder of <case>.nii.gz predictions")
    k.add_argument("--challenge", required=True, choices=sorted(CHALLENGES))
    k.add_argument("--out", required=True, help="zip file to write")
    k.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mednext.evaluation.submission import package_submission

    names = package_submission(args.pred, args.challenge, args.out)
    print(f"{args.out}: {len(names)} files")
    return 0
