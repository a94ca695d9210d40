"""Command-line entry point: ``mednext-repro <command>`` or ``python -m mednext <command>``.

Each module in :mod:`mednext.commands` contributes one sub-command through a
``register(subparsers)`` function that sets ``func`` on its parser; adding a command is adding a
module there.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

import mednext.commands


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with one sub-command per module of :mod:`mednext.commands`."""
    parser = argparse.ArgumentParser(prog="mednext-repro", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(mednext.commands.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"mednext.commands.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the process exit code (errors propagate)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = args.func(args)
    return int(result or 0)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that describe bad input (their message names the file and the problem)."""
    from mednext.config_schema import ConfigValueError
    from mednext.data.errors import DataError, UnknownDatasetError
    from mednext.evaluation.io import EvaluationInputError
    from mednext.networks import baselines_package
    from mednext.workflow.config_source import ConfigSourceError
    from mednext.workflow.grid import ConfigError

    baselines = baselines_package()  # optional package; a foreign one fails loudly
    plugin_errors = () if baselines is None else (baselines.PatchSizeError,)
    config_errors = (ConfigSourceError, ConfigValueError, ConfigError)
    return (DataError, UnknownDatasetError, EvaluationInputError, *config_errors, *plugin_errors, FileNotFoundError)


def entry(argv: Sequence[str] | None = None) -> int:
    """Console entry point: like :func:`main`, but bad input ends with one ``error:`` line, exit code 1.

    A traceback is printed only with ``--verbose``; anything unexpected still raises.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return main(args)
    except _user_errors() as error:
        if "-v" in args or "--verbose" in args:
            raise
        print(f"mednext-repro: error: {error}", file=sys.stderr)
        return 1
