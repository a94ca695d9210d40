"""One complete configuration per workflow run.

Snakemake merges every config it is given: a ``configfile:`` directive in the Snakefile plus the
profile's ``configfile`` let demo values fill every key the paper config left out. The workflow
therefore has no ``configfile:`` directive; :func:`select_config` takes the one file given on the
command line (the slurm profile gives ``config/paper.yaml``) or, when none is, the demo config, then
applies ``--config KEY=VALUE`` overrides. Optional keys missing from that file are filled from the
schema's ``default`` values (``snakemake.utils.validate(..., set_default=True)``), never from another
config file.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

#: The demo config a plain ``snakemake --cores 2 all_tables`` (``make demo``) runs.
DEMO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"


class ConfigSourceError(ValueError):
    """More than one config file, or one that is not a YAML mapping."""


def _deep_update(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; :class:`ConfigSourceError` naming the file otherwise."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigSourceError(f"{path}: cannot read the workflow config ({error})") from None
    if not isinstance(data, dict):
        raise ConfigSourceError(f"{path}: a workflow config must be a YAML mapping, found {type(data).__name__}")
    return data


def select_config(
    configfiles: Sequence[str | Path], current: Mapping[str, Any], default: str | Path = DEMO_CONFIG
) -> dict[str, Any]:
    """The run's config: the single file given, or ``default`` when none was given.

    Args:
        configfiles: the ``--configfile`` paths (Snakemake has already loaded them into ``current``).
        current: Snakemake's config so far (the loaded file plus ``--config`` overrides).
        default: the config used when no file is given (the demo).

    Raises:
        ConfigSourceError: two or more config files (they would be merged key by key).
    """
    if len(configfiles) > 1:
        names = ", ".join(str(p) for p in configfiles)
        raise ConfigSourceError(
            f"give one complete workflow config, not {len(configfiles)} ({names}): Snakemake would merge them "
            "key by key; copy one file and edit it (use --config KEY=VALUE for single overrides)"
        )
    if configfiles:
        return copy.deepcopy(dict(current))
    # No file: the demo, with any --config overrides (already in ``current``) applied on top.
    return _deep_update(load_config_file(default), current)


def load_workflow_config(path: str | Path) -> dict[str, Any]:
    """The config in ``path`` as the workflow sees it: validated against the schema, its defaults filled
    (for commands that read a config outside Snakemake, e.g. ``gpu-hours``)."""
    from mednext.config_schema import ConfigValueError, validate_with_defaults

    try:
        return validate_with_defaults(load_config_file(path), str(path))
    except ConfigValueError as error:
        raise ConfigSourceError(str(error)) from None
