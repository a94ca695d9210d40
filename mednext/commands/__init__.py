"""One module per ``mednext-repro`` sub-command, each with ``register(subparsers)``; shared argument helpers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DATASET_HELP = "dataset: registry key (kits19), nnU-Net id (40) or folder name (Dataset040_KiTS19)"


def add_dataset_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, required: bool = True,
                         help: str = DATASET_HELP) -> None:
    """The one dataset identifier every command takes: ``--dataset`` (key, id or folder name)."""
    parser.add_argument("--dataset", required=required, help=help)


def registry_key(identifier: str) -> str | None:
    """The registry key of the dataset ``identifier`` names (key, id or folder name), or None."""
    from mednext.data.errors import UnknownDatasetError
    from mednext.data.registry import get_dataset

    try:
        return get_dataset(identifier).key
    except UnknownDatasetError:
        return None


def dataset_label(identifier: str) -> str:
    """The name results are filed under: the registry key of a known dataset, else ``identifier`` as given."""
    return registry_key(identifier) or identifier


def add_config_arguments(parser: argparse.ArgumentParser, default: Path | None, what: str) -> None:
    """``--config FILE`` or ``--config-json JSON`` (the workflow's resolved config, as its rules pass it)."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, default=default, help=f"workflow config file: {what}")
    source.add_argument("--config-json", default=None, metavar="JSON",
                        help="the workflow's resolved config as JSON (what its rules pass)")


def config_of(args: argparse.Namespace) -> tuple[dict[str, Any] | None, str]:
    """The config of :func:`add_config_arguments` (schema defaults filled, own datasets registered), and
    where it came from; ``(None, ...)`` when neither was given."""
    import json

    from mednext.config_schema import validate_with_defaults
    from mednext.workflow.config_source import load_workflow_config
    from mednext.workflow.grid import check_config

    if args.config_json is not None:
        source = "the workflow's config (--config-json)"
        try:
            config = validate_with_defaults(json.loads(args.config_json), source)
        except ValueError as error:
            raise SystemExit(f"{source}: {error}") from None
    elif args.config is not None:
        config, source = load_workflow_config(args.config), str(args.config)
    else:
        return None, "the schema's defaults"
    check_config(config, source)
    return config, source
