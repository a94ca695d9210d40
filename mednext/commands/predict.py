"""``predict``: sliding-window inference (50% overlap, nnU-Net's) with one trained fold, then nnU-Net's evaluation."""

from __future__ import annotations

import argparse
from pathlib import Path

from mednext.commands.train import add_run_arguments, run_of


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("predict", help="predict with one trained fold (default: its validation cases)")
    add_run_arguments(parser)
    parser.add_argument("--output", type=Path, required=True, help="folder for the predicted segmentations")
    parser.add_argument("--input", type=Path, default=None,
                        help="folder of images in nnU-Net naming (default: the fold's validation cases from $nnUNet_raw)")
    parser.add_argument("--reference", type=Path, default=None,
                        help="reference labels to evaluate against (default for validation cases: gt_segmentations)")
    parser.add_argument("--checkpoint", default="checkpoint_final.pth", help="checkpoint file in the fold folder")
    parser.add_argument("--disable-tta", action="store_true", help="no mirroring test-time augmentation")
    parser.add_argument("--no-evaluate", action="store_true", help="skip nnU-Net's evaluation")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mednext.nnunet.runner import predict

    summary = predict(
        run_of(args), args.plans_name, args.output, args.configuration, input_dir=args.input, device=args.device,
        checkpoint=args.checkpoint,
        tta=not args.disable_tta, evaluate=not args.no_evaluate, reference_dir=args.reference,
    )
    if summary is not None:
        print(summary)
    return 0
