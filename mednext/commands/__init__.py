"""One module per ``mednext-repro`` sub-command, each with ``register(subparsers)``; shared argument helpers."""

from __future__ import annotations

import argparse

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
