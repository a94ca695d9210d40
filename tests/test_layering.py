"""The package's layering: no module imports a module of a higher layer.

The layers (``LAYERS``) are the layout table of docs/developer.md ("Layout and layering") read bottom-up: file helpers,
then the network, UpKern and dataset facts, the network registry's mechanism, the entries (the paper's networks,
baselines, ablations), the assembled registry, nnU-Net, evaluation and provenance, statistics and
the workflow helpers, tables, the commands, the CLI. Every ``import`` in the source, module-level or
inside a function, is read with :mod:`ast`, and so is every ``importlib.import_module`` of a project
module by name: loading by name is an import too, with no exception.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: lowest first; a unit may import units of its own or a lower layer only
LAYERS: tuple[tuple[str, ...], ...] = (
    ("mednext.atomic", "mednext.checkpoint_io", "mednext.complexity", "mednext.config_schema", "mednext.vocabulary"),
    ("mednext.network", "mednext.upkern", "mednext.data"),
    ("mednext.network_registry",),
    ("mednext.network_specs", "baselines"),
    ("mednext.ablations",),
    ("mednext.networks",),
    ("mednext.runs",),
    ("mednext.nnunet",),
    ("mednext.evaluation", "mednext.provenance"),
    ("mednext.statistics", "mednext.workflow"),
    ("mednext.tables", "mednext.rehearsal", "mednext.status"),
    ("mednext.commands",),
    ("mednext.cli", "mednext.__main__", "mednext", "mednext.rehearsal_probe"),
)
LAYER_OF = {unit: level for level, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str:
    """The layered unit of a dotted module name: ``baselines`` or ``mednext.<first part>``."""
    parts = module.split(".")
    return "baselines" if parts[0] == "baselines" else ".".join(parts[:2])


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> set[str]:
    """Absolute names of the project's modules that ``path`` imports anywhere."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and _called_name(node.func) == "import_module" and node.args:
            names.add(_constant_prefix(node.args[0]))
    return {n for n in names if n.split(".")[0] in ("mednext", "baselines")}


def _called_name(func: ast.expr) -> str | None:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _constant_prefix(arg: ast.expr) -> str:
    """The module name an ``import_module`` argument starts with: a string, or an f-string's leading text."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        return str(arg.values[0].value).rstrip(".")
    return ""


SOURCES = sorted([*(REPO / "mednext").rglob("*.py"), *(REPO / "baselines").rglob("*.py")])


def test_every_unit_has_a_layer() -> None:
    units = {unit_of(module_name(p)) for p in SOURCES}
    assert units - set(LAYER_OF) == set(), "a new package or module needs a place in LAYERS (and the table in docs/developer.md)"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_imports_a_higher_layer(path: Path) -> None:
    source = unit_of(module_name(path))
    upward = sorted(n for n in project_imports(path) if LAYER_OF[unit_of(n)] > LAYER_OF[source])
    assert not upward, f"{path.relative_to(REPO)} ({source}, layer {LAYER_OF[source]}) imports higher layers: {upward}"


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The reader finds a function-level import, so an upward one could not hide there."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f(x):\n    from mednext.tables.render import write_table\n    import baselines.registry\n"
                     "    importlib.import_module('mednext.ablations')\n    import_module(f'mednext.commands.{x}')\n")
    assert project_imports(probe) == {"mednext.tables.render", "baselines.registry", "mednext.ablations", "mednext.commands"}
    assert LAYER_OF[unit_of("mednext.tables.render")] > LAYER_OF["mednext.data"]
