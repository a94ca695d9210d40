"""``data``: the paper's datasets (§3) from their sources to nnU-Net raw, the synthetic demo set, and fixed splits."""

from __future__ import annotations

import argparse
import inspect
import os
from pathlib import Path

from mednext.commands import add_dataset_argument

DEFAULT_DOWNLOADS = Path("data/downloads")


def _synapse_ids(pairs: list[str]) -> dict[str, str]:
    ids = {}
    for pair in pairs:
        filename, sep, entity = pair.partition("=")
        if not sep or not entity.startswith("syn"):
            raise SystemExit(f"--synapse-id expects FILE=synNNN, found {pair!r}")
        ids[filename] = entity
    return ids


def _add_fetch_options(parser: argparse.ArgumentParser) -> None:
    add_dataset_argument(parser)
    parser.add_argument("--downloads", type=Path, default=DEFAULT_DOWNLOADS,
                        help=f"download cache; files go to <downloads>/<key>/files (default {DEFAULT_DOWNLOADS})")
    parser.add_argument("--mirror", default=None,
                        help="replace scheme and host of every source URL (default $MEDNEXT_DATA_MIRROR)")
    parser.add_argument("--synapse-id", action="append", default=[], metavar="FILE=synNNN",
                        help="Synapse entity id for a file whose id the registry does not record")
    parser.add_argument("--retries", type=int, default=3, help="resume attempts per file (default 3)")


def _add_convert_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw-root", type=Path, default=None, help="nnU-Net raw folder (default $nnUNet_raw)")
    parser.add_argument("--expected-cases", type=int, default=None,
                        help="training cases required (default: the paper's count from the registry)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DatasetXXX folder")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="download/convert datasets, write the synthetic set and splits")
    actions = parser.add_subparsers(dest="data_action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="show the dataset registry")
    listing.set_defaults(func=run_list)

    download = actions.add_parser("download", help="fetch, verify and unpack a dataset's source files")
    _add_fetch_options(download)
    download.set_defaults(func=run_download)

    convert = actions.add_parser("convert", help="validate and convert a downloaded dataset to nnU-Net raw")
    add_dataset_argument(convert)
    convert.add_argument("--downloads", type=Path, default=DEFAULT_DOWNLOADS, help="download cache (see download)")
    convert.add_argument("--source", type=Path, default=None,
                         help="raw-layout tree to convert (default <downloads>/<key>/source)")
    _add_convert_options(convert)
    convert.set_defaults(func=run_convert)

    prepare = actions.add_parser("prepare", help="download (if needed) and convert in one step")
    _add_fetch_options(prepare)
    _add_convert_options(prepare)
    prepare.set_defaults(func=run_prepare)

    link = actions.add_parser("link-raw", help="validate your own nnU-Net v2 raw folder and link it into nnU-Net raw")
    link.add_argument("folder", type=Path, help="an nnU-Net v2 raw dataset folder, e.g. /data/nnUNet_raw/Dataset501_LiverToy")
    link.add_argument("--raw-root", type=Path, default=None, help="nnU-Net raw folder (default $nnUNet_raw)")
    link.set_defaults(func=run_link_raw)

    synthetic = actions.add_parser("synthetic", help="write the deterministic synthetic demo dataset")
    synthetic.add_argument("--raw-root", type=Path, default=None, help="nnU-Net raw folder (default $nnUNet_raw)")
    synthetic.add_argument("--dataset-id", type=int, default=990)
    synthetic.add_argument("--name", default="SyntheticAbdomen")
    synthetic.add_argument("--n-cases", type=int, default=8)
    synthetic.add_argument("--seed", type=int, default=0)
    # Defaults are write_synthetic_dataset's own, so the CLI and the workflow write the same data.
    from mednext.data.synthetic import write_synthetic_dataset

    defaults = inspect.signature(write_synthetic_dataset).parameters
    synthetic.add_argument("--shape", type=int, nargs=3, default=list(defaults["shape"].default), metavar=("Z", "Y", "X"))
    synthetic.add_argument("--spacing", type=float, nargs=3, default=list(defaults["spacing"].default),
                           metavar=("Z", "Y", "X"))
    synthetic.set_defaults(func=run_synthetic)

    splits = actions.add_parser("splits", help="write splits_final.json (KFold 5, shuffle, seed 12345)")
    add_dataset_argument(splits)
    splits.add_argument("--raw-root", type=Path, default=None,
                        help="take case ids from <raw-root>/<folder>/labelsTr (default $nnUNet_raw if it has it)")
    splits.add_argument("--preprocessed-root", type=Path, default=None,
                        help="nnU-Net preprocessed folder (default $nnUNet_preprocessed)")
    splits.set_defaults(func=run_splits)


def run_list(args: argparse.Namespace) -> int:
    from mednext.data.registry import DATASETS

    print(f"{'key':<10} {'nnU-Net folder':<28} {'cases':>5}  {'credentials':<20} licence")
    for spec in DATASETS.values():
        print(f"{spec.key:<10} {spec.folder_name:<28} {spec.expected_training_cases:>5}  "
              f"{spec.credential_env or '-':<20} {spec.licence}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from mednext.data.prepare import download_dataset

    source = download_dataset(args.dataset, args.downloads, mirror=args.mirror, synapse_ids=_synapse_ids(args.synapse_id),
                              retries=args.retries)
    print(source)
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from mednext.data.prepare import convert_dataset
    from mednext.data.registry import get_dataset

    spec = get_dataset(args.dataset)
    source = args.source or args.downloads / spec.key / "source"
    print(convert_dataset(spec, source, args.raw_root, expected_cases=args.expected_cases, overwrite=args.overwrite))
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from mednext.data.prepare import prepare_dataset

    print(prepare_dataset(args.dataset, args.downloads, args.raw_root, mirror=args.mirror,
                          synapse_ids=_synapse_ids(args.synapse_id), expected_cases=args.expected_cases,
                          overwrite=args.overwrite, retries=args.retries))
    return 0


def run_link_raw(args: argparse.Namespace) -> int:
    from mednext.data.own_dataset import link_own_dataset
    from mednext.data.prepare import nnunet_raw_root

    print(link_own_dataset(args.folder, nnunet_raw_root(args.raw_root)))
    return 0


def run_synthetic(args: argparse.Namespace) -> int:
    from mednext.data.prepare import nnunet_raw_root
    from mednext.data.synthetic import write_synthetic_dataset

    print(write_synthetic_dataset(nnunet_raw_root(args.raw_root), dataset_id=args.dataset_id, name=args.name,
                                  n_cases=args.n_cases, seed=args.seed, shape=tuple(args.shape),
                                  spacing=tuple(args.spacing)))
    return 0


def run_splits(args: argparse.Namespace) -> int:
    from mednext.data.splits import case_ids_from_raw, write_splits_final
    from mednext.nnunet.paths import nnunet_folder

    folder = nnunet_folder(args.dataset)
    pre_root = args.preprocessed_root or (Path(os.environ["nnUNet_preprocessed"])
                                          if "nnUNet_preprocessed" in os.environ else None)
    if pre_root is None:
        raise SystemExit("no --preprocessed-root given and nnUNet_preprocessed is not set")
    raw_root = args.raw_root or (Path(os.environ["nnUNet_raw"]) if "nnUNet_raw" in os.environ else None)
    ids = case_ids_from_raw(raw_root / folder) if raw_root is not None and (raw_root / folder).is_dir() else None
    print(write_splits_final(pre_root / folder, ids))
    return 0
