"""``evaluate``: score a prediction folder against ground truth into a tidy per-case CSV (DSC, surface
Dice, HD95 per region), check it against nnU-Net's own validation Dice, and record its provenance."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mednext.commands import DATASET_HELP, add_dataset_argument, dataset_label
from mednext.evaluation.metrics import SPACING_MODES, label_regions, region_presets

log = logging.getLogger(__name__)

#: ``--region-preset`` choices, derived from the dataset registry (mednext.data.registry).
REGION_PRESETS: dict[str, dict[str, tuple[int, ...]]] = region_presets()


def parse_regions(items: list[str]) -> dict[str, tuple[int, ...]]:
    """``["WT=1,2,3", "ET=3"]`` -> ``{"WT": (1, 2, 3), "ET": (3,)}``."""
    regions: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, labels = item.partition("=")
        try:
            values = tuple(int(v) for v in labels.split(",") if v.strip())
        except ValueError:
            values = ()
        if not sep or not name or not values:
            raise argparse.ArgumentTypeError(f"region {item!r}: expected NAME=LABEL[,LABEL...], e.g. WT=1,2,3")
        regions[name] = values
    return regions


def _regions_from_args(args: argparse.Namespace) -> dict[str, tuple[int, ...]]:
    chosen = [x for x in (args.regions, args.region_preset, args.labels) if x]
    if len(chosen) != 1:
        raise SystemExit("evaluate: give exactly one of --regions, --region-preset, --labels")
    if args.regions:
        return parse_regions(args.regions)
    if args.region_preset:
        return dict(REGION_PRESETS[args.region_preset])
    return label_regions(args.labels)


def _run_evaluate(args: argparse.Namespace) -> int:
    from mednext.evaluation.results import evaluate_folder
    from mednext.provenance import utc_now

    cases = None
    if args.splits:
        from mednext.data.splits import fold_validation_cases

        try:
            cases = fold_validation_cases(args.splits, args.fold)
        except ValueError as error:
            raise SystemExit(f"evaluate: --splits: {error}") from None
    started = utc_now()
    run = evaluate_folder(
        args.gt, args.pred, args.out, dataset=dataset_label(args.dataset), network=args.network, fold=args.fold,
        regions=_regions_from_args(args), allowed_labels=args.allowed_labels,
        spacing_modes=args.spacing_modes, tolerance_mm=args.tolerance, workers=args.workers,
        spacing_tolerance_mm=args.spacing_tolerance, cases=cases,
    )
    if args.nnunet_summary:
        _check_nnunet_agreement(args)
    state = "written" if run.recomputed else "up to date, not recomputed"
    _write_provenance(args, started, run.recomputed)
    print(f"{run.csv_path}: {run.n_cases} cases, {state}")
    return 0


def _check_nnunet_agreement(args: argparse.Namespace) -> None:
    """Our DSC per case and class must equal nnU-Net's validation summary.json Dice."""
    from mednext.evaluation.nnunet_agreement import AgreementError, check_fold_agreement
    from mednext.evaluation.results import signature_path

    try:
        agreement = check_fold_agreement(args.out, args.nnunet_summary, _regions_from_args(args))
    except AgreementError as error:
        # nothing that disagrees is left behind (Snakemake would delete it too; a direct call must as well)
        for path in (Path(args.out), signature_path(Path(args.out))):
            path.unlink(missing_ok=True)
        raise SystemExit(f"evaluate: disagrees with nnU-Net: {error}") from None
    print(f"{args.out}: DSC agrees with {args.nnunet_summary} ({agreement.n_cases} cases, classes "
          f"{', '.join(agreement.classes)}; max |diff| {agreement.max_abs_difference:.1e})")


def _write_provenance(args: argparse.Namespace, started, recomputed: bool) -> None:
    """``provenance.json`` (and the fold's ``recipe.json``) beside the metrics CSV."""
    from mednext.provenance import PROVENANCE_FILE, evaluation_record, utc_now, write_evaluation_provenance

    if not recomputed and (Path(args.out).parent / PROVENANCE_FILE).is_file():
        return  # the metrics and their record are from an earlier run
    identity = {"dataset": dataset_label(args.dataset), "network": args.network, "fold": args.fold,
                "metrics": Path(args.out).name}
    job = {"regions": args.regions, "region_preset": args.region_preset, "labels": args.labels,
           "spacing_modes": args.spacing_modes, "tolerance_mm": args.tolerance, "workers": args.workers}
    record = evaluation_record(identity, job, started, utc_now(), args.fold_dir, recomputed)
    write_evaluation_provenance(args.out, record, args.fold_dir)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="score a prediction folder against ground truth into a tidy CSV")
    p.add_argument("--gt", required=True, help="folder of ground-truth label maps (<case>.nii.gz)")
    p.add_argument("--pred", required=True, help="folder of predictions with the same file names")
    p.add_argument("--out", required=True, help="tidy CSV to write")
    add_dataset_argument(p, help=f"{DATASET_HELP}; results are filed under its registry key (or the name as given)")
    p.add_argument("--network", required=True)
    p.add_argument("--fold", required=True, help="fold number, or e.g. 'test' / 'ensemble'")
    p.add_argument("--splits", help="nnU-Net splits_final.json: score only the validation cases of --fold")
    p.add_argument("--fold-dir", help="nnU-Net fold folder of the run: its provenance.json and recipe.json "
                   "go into the provenance written beside --out")
    p.add_argument("--nnunet-summary", help="nnU-Net's validation/summary.json of the same predictions: fail, naming "
                   "the case, unless every per-case DSC equals its Dice to 1e-6")
    p.add_argument("--regions", nargs="+", metavar="NAME=L1,L2", help="regions as unions of labels, e.g. WT=1,2,3 TC=2,3 ET=3")
    p.add_argument("--region-preset", choices=sorted(REGION_PRESETS), help="predefined regions")
    p.add_argument("--labels", nargs="+", type=int, help="one class per label value (e.g. BTCV: 1 ... 13)")
    p.add_argument("--allowed-labels", nargs="+", type=int, help="valid label values (default: 0 plus all region labels)")
    p.add_argument("--spacing-modes", nargs="+", choices=SPACING_MODES, default=list(SPACING_MODES),
                   help="physical: image spacing in mm; paper: spacing 1 as the official MedNeXt evaluation")
    p.add_argument("--tolerance", type=float, default=1.0, help="surface Dice tolerance in mm (default 1.0)")
    p.add_argument("--spacing-tolerance", type=float, default=1e-3, help="allowed spacing mismatch in mm")
    p.add_argument("--workers", type=int, default=1, help="cases scored in parallel processes")
    p.set_defaults(func=_run_evaluate)
