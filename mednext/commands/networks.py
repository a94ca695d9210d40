"""``mednext-repro networks``: the network registry (built-ins, the ablations and plugins' entries)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("networks", help="list the registered networks (names the config and tables use)")
    parser.add_argument("--family", action="append", help="only this family (mednext, ablation, nnunet, baseline); repeatable")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mednext.networks import get_network, list_networks

    print(f"{'network':<34} {'family':<9} {'size':<7} {'starts from':<14} trainer")
    for name in list_networks(args.family):
        spec = get_network(name)
        print(f"{name:<34} {spec.family:<9} {spec.size_class:<7} {spec.init_from or '-':<14} {spec.trainer_name}")
    return 0
