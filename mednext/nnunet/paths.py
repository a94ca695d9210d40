"""Where nnU-Net keeps a run, derived from names only (never typed by the user).

nnU-Net v2 layout: ``$nnUNet_results/<DatasetXXX_Name>/<Trainer>__<Plans>__<Configuration>/fold_<F>``
(``nnUNetTrainer.__init__``); checkpoints ``checkpoint_{final,latest,best}.pth`` inside.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import mednext.nnunet.ext_trainers as _ext_trainers

DEFAULT_PLANS = "nnUNetPlans_1mm"
NNUNET_PATH_VARS = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")
EXT_TRAINER_VAR = "nnUNet_extTrainer"


def ext_trainer_dir() -> Path:
    """The folder to put in ``nnUNet_extTrainer`` so stock nnU-Net finds the project's trainers."""
    return Path(_ext_trainers.__file__).resolve().parent


def nnunet_env(base: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) with the project trainer folder prepended to
    ``nnUNet_extTrainer`` and ``extra`` applied; for nnU-Net subprocesses."""
    env = dict(os.environ if base is None else base)
    ext = str(ext_trainer_dir())
    current = [p for p in env.get(EXT_TRAINER_VAR, "").split(os.pathsep) if p and p != ext]
    env[EXT_TRAINER_VAR] = os.pathsep.join([ext, *current])
    env.update(extra or {})
    return env


def require_env(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """The folder in environment variable ``name``; RuntimeError if it is unset."""
    value = (os.environ if environ is None else environ).get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} is not set; nnU-Net needs {', '.join(NNUNET_PATH_VARS)}")
    return Path(value)


def nnunet_folder(dataset: int | str) -> str:
    """nnU-Net's folder name (``Dataset040_KiTS19``) of a dataset: the one place a dataset's nnU-Net
    identity is resolved.

    ``dataset`` is a registry key (``kits19``), a folder name, or an nnU-Net id (``40``). A registered
    dataset's folder comes from the registry; a folder name the registry does not know is taken as
    given; an unknown id is looked up by nnU-Net in ``$nnUNet_raw``/``_preprocessed``/``_results``.

    Raises:
        UnknownDatasetError: neither the registry nor nnU-Net knows it.
    """
    from mednext.data.errors import UnknownDatasetError
    from mednext.data.own_dataset import FOLDER_PATTERN
    from mednext.data.registry import get_dataset

    text = str(dataset).strip()
    try:
        return get_dataset(text).folder_name
    except UnknownDatasetError:
        if FOLDER_PATTERN.fullmatch(text):
            return text
        if not text.isdigit():
            raise
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    try:
        return maybe_convert_to_dataset_name(int(text))
    except RuntimeError as error:  # nnU-Net: no folder with that id anywhere
        raise UnknownDatasetError(f"dataset id {text}: {error}") from None


def nnunet_id(dataset: int | str) -> int:
    """nnU-Net's dataset id (the ``040`` of ``Dataset040_KiTS19``), via :func:`nnunet_folder`."""
    from mednext.data.own_dataset import FOLDER_PATTERN

    return int(FOLDER_PATTERN.fullmatch(nnunet_folder(dataset)).group(1))


def run_folder(results: Path, dataset: str, trainer_name: str, plans: str, configuration: str) -> Path:
    """``results/dataset/Trainer__Plans__Configuration``."""
    return Path(results) / dataset / f"{trainer_name}__{plans}__{configuration}"


def fold_folder(results: Path, dataset: str, trainer_name: str, plans: str, configuration: str, fold: int | str) -> Path:
    """``.../fold_<fold>`` of a run."""
    return run_folder(results, dataset, trainer_name, plans, configuration) / f"fold_{fold}"


def final_checkpoint(results: Path, dataset: str, trainer_name: str, plans: str, configuration: str, fold: int | str) -> Path:
    """The ``checkpoint_final.pth`` a finished run leaves."""
    return fold_folder(results, dataset, trainer_name, plans, configuration, fold) / "checkpoint_final.pth"


@contextlib.contextmanager
def temporary_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in ``os.environ`` for the ``with`` block, then restore what was there (in-process
    nnU-Net reads ``nnUNet_results`` and ``nnUNet_compile`` from it)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
