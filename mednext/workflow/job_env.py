"""The environment a workflow job's command runs with, passed explicitly on its shell line.

nnU-Net reads its three folders from the environment (``nnUNet_raw``, ``nnUNet_preprocessed``,
``nnUNet_results``), and training/evaluation record which config ran them (provenance).
Instead of changing the Snakemake process's own ``os.environ`` at parse time, each rule that needs
them prefixes its command with ``env NAME=VALUE ...`` built here. The prefix is a global of the
rule files, not a rule parameter, so a config change outside a rule's own values does not mark its
outputs as outdated (Snakemake compares the unformatted shell text and the params).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mednext.provenance import config_env
from mednext.workflow.layout import Layout

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_prefix(values: Mapping[str, str]) -> str:
    """``env NAME=VALUE ...`` for a shell line, every assignment quoted (paths may hold spaces)."""
    bad = [name for name in values if not _NAME.fullmatch(name)]
    if bad:
        raise ValueError(f"not environment variable names: {bad}")
    return shlex.join(["env", *(f"{name}={value}" for name, value in sorted(values.items()))])


def job_env(config: Mapping[str, Any], config_file: str | Path | None) -> dict[str, str]:
    """nnU-Net's folders of ``config`` (absolute) and the config's hashes for provenance."""
    return {**Layout.from_config(config).nnunet_env(), **config_env(config, config_file)}
