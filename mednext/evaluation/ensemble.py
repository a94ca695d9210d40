"""5-fold-ensemble prediction of a dataset's test images with nnU-Net v2 (paper §3: test-set
results come from the ensemble of the five cross-validation models).

Thin wrapper around stock ``nnUNetv2_predict_from_modelfolder``: it checks that every fold's
checkpoint exists before starting, then lets nnU-Net average the folds' softmax outputs and
export segmentations named ``<case>.nii.gz``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mednext.evaluation.io import EvaluationInputError
from mednext.vocabulary import FOLDS


def check_model_folder(model_dir: str | Path, folds: Sequence[int | str], checkpoint: str) -> list[Path]:
    """Paths of the fold checkpoints; raises naming the first missing file."""
    model_dir = Path(model_dir)
    for required in ("dataset.json", "plans.json"):
        if not (model_dir / required).is_file():
            raise EvaluationInputError(f"{model_dir / required}: missing (not an nnU-Net training output folder)")
    paths = [model_dir / f"fold_{fold}" / checkpoint for fold in folds]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise EvaluationInputError(f"missing checkpoint(s) for the ensemble: {', '.join(missing)}")
    return paths


def predict_test_set(
    model_dir: str | Path,
    input_dir: str | Path,
    output_dir: str | Path,
    folds: Sequence[int | str] = FOLDS,
    checkpoint: str = "checkpoint_final.pth",
    device: str = "cuda",
    tile_step_size: float = 0.5,
    use_mirroring: bool = True,
    num_processes: int = 2,
    overwrite: bool = False,
) -> Path:
    """Predict every image of ``input_dir`` (nnU-Net raw naming, ``<case>_0000.nii.gz``) with the
    ensemble of ``folds`` and write segmentations to ``output_dir``; returns ``output_dir``.

    Runs stock ``nnUNetv2_predict_from_modelfolder`` with the project's trainer folder in
    ``nnUNet_extTrainer`` (:func:`mednext.nnunet.paths.nnunet_env`), the same way ``predict`` and
    ``train`` reach nnU-Net, so the MedNeXt and baseline trainer classes are found.
    """
    import subprocess

    from mednext.nnunet.paths import nnunet_env
    from mednext.nnunet.runner import nnunet_executable

    check_model_folder(model_dir, folds, checkpoint)
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir() or not any(input_dir.glob("*_0000.*")):
        raise EvaluationInputError(f"{input_dir}: no test images named <case>_0000.<ext>")
    output_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        nnunet_executable("nnUNetv2_predict_from_modelfolder"), "-i", str(input_dir), "-o", str(output_dir),
        "-m", str(model_dir), "-f", *map(str, folds), "-chk", checkpoint, "-step_size", str(tile_step_size),
        "-device", device, "-npp", str(num_processes), "-nps", str(num_processes),
    ]
    if not use_mirroring:
        cmd.append("--disable_tta")
    if not overwrite:
        cmd.append("--continue_prediction")
    subprocess.run(cmd, env=nnunet_env(), check=True)
    return output_dir
