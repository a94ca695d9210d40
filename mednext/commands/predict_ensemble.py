"""``predict-ensemble``: predict test images with the cross-validation folds' ensemble (§3: test-set
results come from the 5-fold ensemble), through stock nnU-Net with the project's trainers."""

from __future__ import annotations

import argparse

from mednext.vocabulary import FOLDS


def register(subparsers: argparse._SubParsersAction) -> None:
    e = subparsers.add_parser("predict-ensemble", help="predict test images with the 5-fold nnU-Net ensemble")
    e.add_argument("--model-dir", required=True, help="nnU-Net training output folder (holds fold_0 ... fold_4)")
    e.add_argument("--input", required=True, help="folder of test images <case>_0000.nii.gz")
    e.add_argument("--output", required=True)
    e.add_argument("--folds", nargs="+", type=int, default=list(FOLDS))
    e.add_argument("--checkpoint", default="checkpoint_final.pth")
    e.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    e.add_argument("--processes", type=int, default=2)
    e.add_argument("--disable-tta", action="store_true", help="no mirroring test-time augmentation")
    e.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mednext.evaluation.ensemble import predict_test_set

    out = predict_test_set(args.model_dir, args.input, args.output, folds=args.folds, checkpoint=args.checkpoint,
                           device=args.device, num_processes=args.processes, use_mirroring=not args.disable_tta)
    print(out)
    return 0
