"""One call from a registry name to an nnU-Net raw dataset: fetch, unpack, find cases, validate, convert."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mednext.data.convert import convert_cases
from mednext.data.errors import DataError
from mednext.data.layouts import find_cases
from mednext.data.registry import DatasetSpec, get_dataset
from mednext.data.sources import build_source_tree, fetch_sources


def nnunet_raw_root(raw_root: Path | None = None) -> Path:
    """``raw_root`` if given, else ``$nnUNet_raw``."""
    if raw_root is not None:
        return Path(raw_root)
    env = os.environ.get("nnUNet_raw")
    if not env:
        raise DataError("no nnU-Net raw folder given and nnUNet_raw is not set; pass --raw-root or export nnUNet_raw")
    return Path(env)


def download_dataset(
    name: str | DatasetSpec,
    downloads_dir: Path,
    *,
    mirror: str | None = None,
    synapse_ids: Mapping[str, str] | None = None,
    retries: int = 3,
    retry_wait_s: float = 2.0,
    progress: bool = True,
) -> Path:
    """Fetch and unpack a dataset's sources; return its source tree (its own raw layout)."""
    spec = name if isinstance(name, DatasetSpec) else get_dataset(name)
    if not spec.files:
        raise DataError(f"{spec.key}: nothing to download (generated locally; use the synthetic command)")
    fetch_sources(spec, downloads_dir, mirror=mirror, synapse_ids=synapse_ids, retries=retries,
                  retry_wait_s=retry_wait_s, progress=progress)
    return build_source_tree(spec, downloads_dir)


def convert_dataset(
    name: str | DatasetSpec,
    source_root: Path,
    raw_root: Path | None = None,
    *,
    expected_cases: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Convert a source tree to ``raw_root/DatasetXXX_Name``; see :func:`mednext.data.convert.convert_cases`."""
    spec = name if isinstance(name, DatasetSpec) else get_dataset(name)
    cases = find_cases(spec, source_root)
    return convert_cases(spec, cases, nnunet_raw_root(raw_root), expected_cases=expected_cases,
                         overwrite=overwrite, progress=progress)


def prepare_dataset(
    name: str | DatasetSpec,
    downloads_dir: Path,
    raw_root: Path | None = None,
    *,
    mirror: str | None = None,
    synapse_ids: Mapping[str, str] | None = None,
    expected_cases: int | None = None,
    overwrite: bool = False,
    retries: int = 3,
    retry_wait_s: float = 2.0,
    progress: bool = True,
) -> Path:
    """Download (if needed) and convert one dataset; one with a generator (``DatasetSpec.generate``, the
    synthetic set) is generated instead."""
    spec = name if isinstance(name, DatasetSpec) else get_dataset(name)
    if spec.generate is not None:
        n_cases = spec.expected_training_cases if expected_cases is None else expected_cases
        return spec.generate(nnunet_raw_root(raw_root), spec, n_cases)
    source = download_dataset(spec, downloads_dir, mirror=mirror, synapse_ids=synapse_ids, retries=retries,
                              retry_wait_s=retry_wait_s, progress=progress)
    return convert_dataset(spec, source, raw_root, expected_cases=expected_cases, overwrite=overwrite,
                           progress=progress)
