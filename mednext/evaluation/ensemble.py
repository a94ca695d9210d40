"""5-fold-ensemble prediction of a dataset's test images with nnU-Net v2 (paper §3: test-set
results come from the ensemble of the five cross-validation models).

Thin wrapper around ``nnunetv2.inference.predict_from_raw_data.nnUNetPredictor``: it checks
that every fold's checkpoint exists before starting, then lets nnU-Net average the folds'
softmax outputs and export segmentations named ``<case>.nii.gz``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mednext.evaluation.io import EvaluationInputError

ALL_FOLDS: tuple[int, ...] = (0, 1, 2, 3, 4)


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
    folds: Sequence[int | str] = ALL_FOLDS,
    checkpoint: str = "checkpoint_final.pth",
    device: str = "cuda",
    tile_step_size: float = 0.5,
    use_mirroring: bool = True,
    num_processes: int = 2,
    overwrite: bool = False,
) -> Path:
    """Predict every image of ``input_dir`` (nnU-Net raw naming, ``<case>_0000.nii.gz``) with the
    ensemble of ``folds`` and write segmentations to ``output_dir``; returns ``output_dir``."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    check_model_folder(model_dir, folds, checkpoint)
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir() or not any(input_dir.glob("*_0000.*")):
        raise EvaluationInputError(f"{input_dir}: no test images named <case>_0000.<ext>")
    output_dir.mkdir(parents=True, exist_ok=True)
    predictor = nnUNetPredictor(
        tile_step_size=tile_step_size,
        use_gaussian=True,
        use_mirroring=use_mirroring,
        perform_everything_on_device=device != "cpu",
        device=torch.device(device),
        allow_tqdm=True,
    )
    predictor.initialize_from_trained_model_folder(str(model_dir), use_folds=tuple(folds), checkpoint_name=checkpoint)
    predictor.predict_from_files(
        str(input_dir), str(output_dir), save_probabilities=False, overwrite=overwrite,
        num_processes_preprocessing=num_processes, num_processes_segmentation_export=num_processes,
    )
    return output_dir
