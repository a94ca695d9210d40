"""Helpers for the nnU-Net tests: nnU-Net folders in the environment and a small synthetic dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from mednext.data.synthetic import write_synthetic_dataset

DATASET_ID = 990
#: 12 x 40 x 40 voxels at 2.5 x 0.8 x 0.8 mm -> 30 x 32 x 32 at 1 mm: one 32³ tile per case.
SMALL_SHAPE = (12, 40, 40)
N_CASES = 5  # 5-fold CV: one validation case per fold

#: Single-threaded, no worker processes: fast and steady on the 2-core CI machine.
FAST_ENV = {
    "nnUNet_def_n_proc": "1",
    "nnUNet_n_proc_DA": "0",
    "nnUNet_compile": "0",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def set_nnunet_env(mp: pytest.MonkeyPatch, root: Path) -> dict[str, Path]:
    """Point nnU-Net's three folders under ``root`` (created) and apply :data:`FAST_ENV`."""
    dirs = {name: root / name for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        mp.setenv(name, str(path))
    for key, value in FAST_ENV.items():
        mp.setenv(key, value)
    for key in ("nnUNet_extTrainer", "MEDNEXT_TRAINING_JOB"):
        mp.delenv(key, raising=False)
    return dirs


def write_small_dataset(raw: Path, shape: tuple[int, int, int] = SMALL_SHAPE) -> Path:
    """The project's synthetic dataset (anisotropic 2.5 x 0.8 x 0.8 mm), small."""
    return write_synthetic_dataset(raw, dataset_id=DATASET_ID, n_cases=N_CASES, shape=shape)
