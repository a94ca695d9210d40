"""``plan``: the paper's 1 mm plans (3D 128³ batch 2, 2D 512² batch 14) and nnU-Net preprocessing (§3.1)."""

from __future__ import annotations

import argparse

from mednext.commands import add_dataset_argument
from mednext.nnunet.paper_plans import CONFIGURATIONS, PAPER_BATCH_2D, PAPER_BATCH_3D, PAPER_PATCH_2D, PAPER_PATCH_3D
from mednext.nnunet.paths import DEFAULT_PLANS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plan", help="plan (1 mm, fixed patch) and preprocess one nnU-Net dataset")
    add_dataset_argument(parser)
    parser.add_argument("--plans-name", default=DEFAULT_PLANS, help=f"plans identifier (default {DEFAULT_PLANS})")
    parser.add_argument("--patch-size", type=int, nargs=3, default=list(PAPER_PATCH_3D), metavar=("Z", "Y", "X"),
                        help="3D patch (default 128 128 128; every axis divisible by 16 for MedNeXt)")
    parser.add_argument("--patch-size-2d", type=int, nargs=2, default=list(PAPER_PATCH_2D), metavar=("Y", "X"),
                        help="2D patch (default 512 512)")
    parser.add_argument("--batch-size", type=int, default=PAPER_BATCH_3D, help="3D batch size (default 2)")
    parser.add_argument("--batch-size-2d", type=int, default=PAPER_BATCH_2D, help="2D batch size (default 14)")
    parser.add_argument("--configurations", nargs="+", default=list(CONFIGURATIONS), choices=CONFIGURATIONS,
                        help="configurations to preprocess")
    parser.add_argument("--no-preprocess", action="store_true", help="write the plans only")
    parser.add_argument("--num-processes", type=int, default=2, help="worker processes for nnU-Net")
    parser.add_argument("--verify", action="store_true", help="run nnU-Net's dataset integrity check")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mednext.nnunet.planning import plan_and_preprocess

    plans_file = plan_and_preprocess(
        args.dataset,
        plans_name=args.plans_name,
        patch_size_3d=args.patch_size,
        patch_size_2d=args.patch_size_2d,
        batch_size_3d=args.batch_size,
        batch_size_2d=args.batch_size_2d,
        configurations=args.configurations,
        preprocess=not args.no_preprocess,
        num_processes=args.num_processes,
        verify_dataset=args.verify,
    )
    print(plans_file)
    return 0
