"""The workflow config's schema (``workflow/schemas/config.schema.yaml``): the one home of every default.

Snakemake validates the config against this schema and fills its ``default`` values
(``snakemake.utils.validate(..., set_default=True)``); commands that read a config or a part of it
outside Snakemake (``gpu-hours``, ``train --set``) do the same through :func:`validate_with_defaults`,
so a default is written once, in the schema.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigValueError(ValueError):
    """A config (or one section of it) does not satisfy the schema; the message names its source."""


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The parsed schema (read once per process)."""
    import yaml

    return yaml.safe_load(SCHEMA_FILE.read_text())


def section_schema(section: str) -> dict[str, Any]:
    """The sub-schema of the top-level key ``section`` (e.g. ``training``)."""
    return load_schema()["properties"][section]


def _fill_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """``value`` with every missing property that has a schema ``default`` filled in, recursively."""
    if not isinstance(value, dict) or schema.get("type") != "object":
        return value
    for name, sub in schema.get("properties", {}).items():
        if name not in value and "default" in sub:
            value[name] = copy.deepcopy(sub["default"])
        if name in value:
            value[name] = _fill_defaults(sub, value[name])
    return value


def _errors(schema: Mapping[str, Any], value: Any) -> Iterator[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in error.path) or "(top level)"
        yield f"{where}: {error.message}"


def validate_with_defaults(value: Mapping[str, Any], source: str, section: str | None = None) -> dict[str, Any]:
    """A copy of ``value`` (the whole config, or its ``section``) with the schema's defaults filled.

    Raises:
        ConfigValueError: naming ``source`` and every violation.
    """
    schema = load_schema() if section is None else section_schema(section)
    filled = _fill_defaults(schema, copy.deepcopy(dict(value)))
    problems = list(_errors(schema, filled))
    if problems:
        label = source if section is None else f"{source} ({section}:)"
        raise ConfigValueError(f"{label}: " + "; ".join(problems))
    return filled
