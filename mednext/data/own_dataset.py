"""Bring your own dataset: an existing nnU-Net v2 raw folder as a dataset of the workflow.

A config entry ``{name: liver_toy, nnunet_raw: /data/nnUNet_raw/Dataset501_LiverToy}`` (optionally
``regions: {NAME: [LABEL, ...]}``) becomes a :class:`~mednext.data.registry.DatasetSpec` read from the
folder's ``dataset.json`` (nnU-Net v2's format: ``channel_names``, ``labels`` with consecutive values
from background 0, ``numTraining``, ``file_ending``; cases ``imagesTr/<case>_<XXXX><ending>`` and
``labelsTr/<case><ending>``). Every case is validated as a converted dataset is
(:func:`mednext.data.convert.validate_case`: all channels, one grid per case, no NaN, label values
within ``dataset.json``'s labels); an error names the file. A folder that passed is remembered in a
small signature file (names, sizes and modification times of its files), so the next parse of the
workflow does not read every volume again. Preparing the dataset links it into the workflow's
nnU-Net raw folder (a copy of ``dataset.json``, symlinks to ``imagesTr`` and ``labelsTr``): nothing is
downloaded or converted, and the user's folder is never written to.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from mednext.atomic import atomic_directory, atomic_write_text
from mednext.data.errors import ConversionError
from mednext.data.layouts import RawCase
from mednext.data.registry import DatasetSpec, Region

#: nnU-Net v2's dataset folder naming, ``Dataset<3 digits>_<name>`` (also the workflow's wildcard).
FOLDER_PATTERN = re.compile(r"Dataset(\d{3})_(\w+)")
#: The folders a prepared own dataset links from the user's folder (test images when present).
LINKED_FOLDERS = ("imagesTr", "labelsTr", "imagesTs")


class OwnDatasetError(ConversionError):
    """An own nnU-Net raw folder is not a valid dataset; the message starts with the offending file."""


def region_name(label: str) -> str:
    """A label's name as an evaluation region: runs of other characters than letters, digits and
    ``_ . + -`` become ``_`` (region names travel on the evaluate command line as ``NAME=1,2``)."""
    return re.sub(r"[^\w.+-]+", "_", label.strip())


def _read_dataset_json(folder: Path) -> dict[str, object]:
    path = folder / "dataset.json"
    if not path.is_file():
        raise OwnDatasetError(f"{path}: missing (an nnU-Net v2 raw folder needs dataset.json)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise OwnDatasetError(f"{path}: not readable JSON ({error})") from None
    if not isinstance(meta, dict):
        raise OwnDatasetError(f"{path}: expected a JSON object, found {type(meta).__name__}")
    missing = [k for k in ("channel_names", "labels", "numTraining", "file_ending") if k not in meta]
    if missing:
        raise OwnDatasetError(f"{path}: missing keys {missing} (nnU-Net v2 dataset.json)")
    if "dataset" in meta:
        raise OwnDatasetError(f"{path}: a 'dataset' file list is not supported; use imagesTr/labelsTr")
    return meta


def _channels(meta: Mapping[str, object], path: Path) -> tuple[str, ...]:
    channels = meta["channel_names"]
    if not isinstance(channels, dict) or not channels:
        raise OwnDatasetError(f"{path}: channel_names must be a non-empty mapping like {{\"0\": \"CT\"}}")
    if sorted(channels) != [str(i) for i in range(len(channels))]:
        raise OwnDatasetError(f"{path}: channel_names keys must be \"0\"..\"{len(channels) - 1}\", found {sorted(channels)}")
    return tuple(str(channels[str(i)]) for i in range(len(channels)))


def _labels(meta: Mapping[str, object], path: Path) -> tuple[str, ...]:
    labels = meta["labels"]
    if not isinstance(labels, dict) or not labels:
        raise OwnDatasetError(f"{path}: labels must be a non-empty mapping like {{\"background\": 0, \"liver\": 1}}")
    if any(not isinstance(v, int) or isinstance(v, bool) for v in labels.values()):
        raise OwnDatasetError(f"{path}: region-based labels (lists) are not supported; give one integer per label "
                              f"and declare regions in the config entry instead")
    by_value = sorted((v, k) for k, v in labels.items())
    if [v for v, _ in by_value] != list(range(len(by_value))):
        raise OwnDatasetError(f"{path}: label values must be consecutive from background 0 (nnU-Net v2), "
                              f"found {[v for v, _ in by_value]}")
    return tuple(k for _, k in by_value)


def _cases(folder: Path, meta: Mapping[str, object], n_channels: int) -> list[RawCase]:
    ending = str(meta["file_ending"])
    path = folder / "dataset.json"
    labels_dir, images_dir = folder / "labelsTr", folder / "imagesTr"
    for sub in (images_dir, labels_dir):
        if not sub.is_dir():
            raise OwnDatasetError(f"{sub}: missing (an nnU-Net v2 raw folder needs imagesTr and labelsTr)")
    cases = [RawCase(p.name[: -len(ending)], tuple(images_dir / f"{p.name[: -len(ending)]}_{c:04d}{ending}"
                                                  for c in range(n_channels)), p)
             for p in sorted(labels_dir.iterdir()) if p.name.endswith(ending)]
    if len(cases) != meta["numTraining"]:
        raise OwnDatasetError(f"{path}: numTraining is {meta['numTraining']} but {labels_dir} holds {len(cases)} "
                              f"label files ending in {ending}")
    expected = {image.name for case in cases for image in case.images}
    for image in sorted(images_dir.iterdir()):
        if image.name.endswith(ending) and image.name not in expected:
            raise OwnDatasetError(f"{image}: image without a label file in {labels_dir} (or a channel beyond "
                                  f"dataset.json's {n_channels})")
    return cases


def _signature(folder: Path, cases: Sequence[RawCase], spec: DatasetSpec) -> str:
    files = [folder / "dataset.json", *(p for c in cases for p in (*c.images, c.label))]
    stats = [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    payload = {"files": stats, "labels": spec.labels, "channels": spec.channel_names}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _validate_cases(folder: Path, cases: Sequence[RawCase], spec: DatasetSpec, cache_dir: Path | None) -> None:
    """:func:`mednext.data.convert.validate_case` on every case, unless the same files passed before."""
    from mednext.data.convert import (
        validate_case,  # reads volumes (SimpleITK, nibabel): imported when needed
    )

    stamp = None if cache_dir is None else Path(cache_dir) / f"{folder.name}.validated.json"
    signature = _signature(folder, cases, spec) if stamp is not None else ""
    if stamp is not None and stamp.is_file():
        try:
            if json.loads(stamp.read_text(encoding="utf-8")).get("signature") == signature:
                return
        except ValueError:
            pass
    for case in cases:
        try:
            validate_case(case, spec)
        except ConversionError as error:
            raise OwnDatasetError(f"{error.path or case.label}: {error}", error.path or case.label) from None
    if stamp is not None:
        atomic_write_text(stamp, json.dumps({"folder": str(folder), "signature": signature}, indent=2) + "\n")


def own_dataset_spec(
    name: str,
    nnunet_raw: str | Path,
    regions: Mapping[str, Sequence[int]] | None = None,
    *,
    cache_dir: Path | None = None,
) -> DatasetSpec:
    """Validate the nnU-Net v2 raw folder ``nnunet_raw`` and describe it as dataset ``name``.

    Evaluation regions: one per foreground label (named as in ``dataset.json``, :func:`region_name`), then the declared
    ``regions`` (name -> label values), all counted in the mean over classes. Raises
    :class:`OwnDatasetError` whose message starts with the offending file.
    """
    folder = Path(nnunet_raw).expanduser().absolute()
    if not folder.is_dir():
        raise OwnDatasetError(f"{folder}: not a folder (dataset {name!r}: nnunet_raw must be an nnU-Net v2 raw folder)")
    match = FOLDER_PATTERN.fullmatch(folder.name)
    if match is None:
        raise OwnDatasetError(f"{folder}: the folder name must be nnU-Net's Dataset<3 digits>_<Name>, e.g. Dataset501_LiverToy")
    meta = _read_dataset_json(folder)
    json_path = folder / "dataset.json"
    channels, labels = _channels(meta, json_path), _labels(meta, json_path)
    label_regions = [Region(region_name(label), (value,)) for value, label in enumerate(labels) if value != 0]
    declared = []
    for region, values in (regions or {}).items():
        bad = [v for v in values if not isinstance(v, int) or not 0 < v < len(labels)]
        if not values or bad:
            raise OwnDatasetError(f"{json_path}: region {region!r} of dataset {name!r} names labels {list(values)}; "
                                  f"expected foreground values 1..{len(labels) - 1}")
        if region_name(region) != region:
            raise OwnDatasetError(f"{json_path}: region {region!r} of dataset {name!r}: use letters, digits and _ . + - only")
        if region in {r.name for r in label_regions}:
            raise OwnDatasetError(f"{json_path}: region {region!r} of dataset {name!r} has a label's name; rename it")
        declared.append(Region(region, tuple(int(v) for v in values)))
    spec = DatasetSpec(
        key=name, title=str(meta.get("description") or meta.get("name") or name), dataset_id=int(match.group(1)),
        nnunet_name=match.group(2), modality=channels[0], channel_names=channels, labels=labels,
        source_label_values=tuple(range(len(labels))), regions=(*label_regions, *declared),
        expected_training_cases=int(meta["numTraining"]), licence=str(meta.get("licence", "the user's own data")),
        homepage=str(folder), nnunet_raw=str(folder), notes="Own nnU-Net v2 raw folder named in the workflow config.",
    )
    _validate_cases(folder, _cases(folder, meta, len(channels)), spec, cache_dir)
    return spec


def link_own_dataset(nnunet_raw: str | Path, raw_root: Path) -> Path:
    """Validate ``nnunet_raw`` and place it as ``raw_root/<its folder name>``: a copy of ``dataset.json``
    and symlinks to its ``imagesTr``, ``labelsTr`` (and ``imagesTs``). Built under a temporary name and
    renamed when complete; an earlier link of the same name is replaced."""
    folder = Path(nnunet_raw).expanduser().absolute()
    own_dataset_spec(folder.name, folder)
    final = Path(raw_root) / folder.name
    if final.resolve() == folder.resolve():
        raise OwnDatasetError(f"{folder}: already inside the workflow's nnU-Net raw folder {raw_root}; "
                              f"name it from anywhere else")
    with atomic_directory(final) as tmp:
        for sub in LINKED_FOLDERS:
            if (folder / sub).is_dir():
                (tmp / sub).symlink_to((folder / sub).resolve(), target_is_directory=True)
        shutil.copyfile(folder / "dataset.json", tmp / "dataset.json")
    return final
