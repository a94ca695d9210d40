"""``recipe``: the effective training and evaluation recipe of one run, read from what the code builds.

Builds the network's trainer from the dataset's plans on the CPU (no training) and prints its
recipe card: plain text for people, ``--json`` for machines. The training items are the card every
training writes as ``recipe.json`` into its fold folder; the evaluation items (regions scored and
averaged, cross-validation aggregation, empty-region convention) come from the project's evaluation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mednext.commands import DATASET_HELP, add_config_arguments, add_dataset_argument, config_of
from mednext.nnunet.paths import DEFAULT_PLANS
from mednext.vocabulary import N_FOLDS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("recipe", help="print the effective training recipe of a (dataset, network) run")
    source = parser.add_mutually_exclusive_group(required=True)
    add_dataset_argument(source, required=False, help=f"{DATASET_HELP}; plans under $nnUNet_preprocessed")
    source.add_argument("--plans", type=Path, help="a plans file to read directly (dataset.json must sit beside it)")
    parser.add_argument("--network", required=True, help="registry name, e.g. MedNeXt-B_k5 (mednext.networks)")
    parser.add_argument("--fold", default="0", help=f"fold 0-{N_FOLDS - 1} or 'all' (default 0; decides the UpKern parent path)")
    parser.add_argument("--plans-name", default=DEFAULT_PLANS, help=f"plans identifier with --dataset (default {DEFAULT_PLANS})")
    parser.add_argument("--configuration", default=None, help="nnU-Net configuration (default: the network's)")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu", "mps"),
                        help="device the training runs on (decides AMP and compile as nnU-Net does; default cuda)")
    add_config_arguments(parser, None, "as `train --config`")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="as `train --set`, e.g. --set compile=true --set gradient_checkpointing=off")
    parser.add_argument("--json", action="store_true", help="print the card as JSON")
    parser.set_defaults(func=run)


def plans_path(dataset: str, plans_name: str) -> Path:
    """``$nnUNet_preprocessed/<DatasetXXX_Name>/<plans_name>.json`` for a key, id or folder name."""
    from mednext.nnunet.paths import nnunet_folder, require_env

    preprocessed = require_env("nnUNet_preprocessed")
    folder = nnunet_folder(dataset)
    return preprocessed / folder / f"{plans_name}.json"


def run(args: argparse.Namespace) -> int:
    from mednext.commands.train import build_job
    from mednext.nnunet.recipe import format_recipe, recipe_for_plans
    from mednext.statistics.evaluation_card import evaluation_card

    plans_file = args.plans if args.plans is not None else plans_path(args.dataset, args.plans_name)
    # the dataset's key decides its learning-rate overrides; a plans file sits in the dataset's folder
    config, _ = config_of(args)
    job = build_job(config, args.overrides, args.dataset or plans_file.parent.name, args.network)
    try:
        card = recipe_for_plans(plans_file, args.network, args.fold, args.configuration, args.device, job)
        card.update(evaluation_card(card["dataset"]))
    except (ValueError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise SystemExit(f"recipe: {message}") from None
    print(json.dumps(card, indent=2) if args.json else format_recipe(card))
    return 0
