"""One module per ``mednext-repro`` sub-command, each with ``register(subparsers)``; shared argument helpers."""

from __future__ import annotations

import argparse

DATASET_HELP = "dataset: registry key (kits19), nnU-Net id (40) or folder name (Dataset040_KiTS19)"


def add_dataset_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, required: bool = True,
                         help: str = DATASET_HELP) -> None:
    """The one dataset identifier every command takes: ``--dataset`` (key, id or folder name)."""
    parser.add_argument("--dataset", required=required, help=help)


def add_dataset_argument_with_legacy_id(parser: argparse.ArgumentParser) -> None:
    """``--dataset`` (required), also read from the former ``--dataset-id`` (hidden from the help), so
    that a workflow run planned before the rename still trains and plans."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--dataset", help=DATASET_HELP)
    group.add_argument("--dataset-id", dest="dataset", help=argparse.SUPPRESS)


def dataset_label(identifier: str) -> str:
    """The name results are filed under: the registry key of a known dataset, else ``identifier`` as given."""
    from mednext.data.errors import UnknownDatasetError
    from mednext.data.registry import get_dataset

    try:
        return get_dataset(identifier).key
    except UnknownDatasetError:
        return identifier
