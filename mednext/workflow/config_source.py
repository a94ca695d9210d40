"""One complete configuration per workflow run (issue 11, item 1).

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


def training_knob_args(training: Mapping[str, Any]) -> str:
    """``mednext-repro train`` flags for the config's checkpoint period and speed knobs (``training:``).

    Values come from the config after schema defaults; YAML's bare ``on``/``off`` (read as booleans)
    mean the same as the strings.
    """
    checkpointing = training.get("gradient_checkpointing", "auto")
    if isinstance(checkpointing, bool):
        checkpointing = "on" if checkpointing else "off"
    args = [
        f"--checkpoint-minutes {float(training.get('checkpoint_minutes', 30)):g}",
        f"--gradient-checkpointing {checkpointing}",
        f"--autocast-dtype {training.get('autocast_dtype', 'float16')}",
    ]
    if training.get("channels_last", False):
        args.append("--channels-last")
    return " ".join(args)
