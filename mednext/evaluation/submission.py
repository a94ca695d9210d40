"""Package test-set predictions the way each challenge expects, and zip them.

Facts (docs/sources.md#brats21, #kits19, #btcv; nnU-Net ``Dataset137_BraTS21.py``):

* BraTS21: nnU-Net trains on labels remapped 2->1 (edema), 1->2 (necrosis), 4->3 (enhancing);
  a submission maps back 1->2, 2->1, 3->4. Files keep the case name (``BraTS2021_XXXXX.nii.gz``).
* KiTS19: case ``case_00XXX`` is submitted as ``prediction_00XXX.nii.gz``.
* BTCV: test image ``img00XX`` is submitted as ``label00XX.nii.gz`` (naming of the Synapse
  label files; the leaderboard's exact expectation could not be checked here).
* ``generic``: names and labels unchanged (e.g. AMOS22).

Naming and label maps come from the dataset registry (``DatasetSpec.submission_naming``, the inverse
of ``DatasetSpec.remap``), never typed here.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mednext.data.registry import DATASETS
from mednext.evaluation.io import EvaluationInputError


@dataclass(frozen=True)
class Challenge:
    """Naming rule (case id -> submitted file name) and optional label mapping."""

    name: str
    pattern: re.Pattern[str]
    template: str
    label_map: dict[int, int] | None = None

    def rename(self, match: re.Match[str]) -> str:
        return match.expand(self.template)


def challenges() -> dict[str, Challenge]:
    """One challenge per registry dataset with ``submission_naming`` (labels mapped back by the inverse of
    its remap, e.g. BraTS 1->2, 2->1, 3->4), plus ``generic`` (names and labels unchanged)."""
    rules = {spec.key: Challenge(spec.key, re.compile(spec.submission_naming[0]), spec.submission_naming[1],
                                 spec.inverse_remap())
             for spec in DATASETS.values() if spec.submission_naming is not None}
    rules["generic"] = Challenge("generic", re.compile(r"^(.+)$"), r"\1.nii.gz")
    return rules


CHALLENGES: dict[str, Challenge] = challenges()
#: nnU-Net's BraTS labels -> the challenge's (derived from the registry's remap).
BRATS_LABELS_TO_CHALLENGE: dict[int, int] = CHALLENGES["brats21"].label_map or {}


def submission_name(case: str, challenge: str) -> str:
    """File name the challenge expects for nnU-Net case ``case``."""
    rule = _challenge(challenge)
    match = rule.pattern.match(case)
    if match is None:
        raise EvaluationInputError(f"case {case!r} does not follow the {challenge} naming ({rule.pattern.pattern})")
    return rule.rename(match)


def map_labels(array: np.ndarray, mapping: dict[int, int], source: Path) -> np.ndarray:
    """Apply a label mapping; labels without a mapping are an error naming ``source``."""
    present = {int(v) for v in np.unique(array)}
    unknown = sorted(present - set(mapping))
    if unknown:
        raise EvaluationInputError(f"{source}: label values {unknown} have no submission mapping {mapping}")
    lut = np.zeros(max(mapping) + 1, dtype=np.uint8)
    for old, new in mapping.items():
        lut[old] = new
    return lut[array]


def _challenge(name: str) -> Challenge:
    if name not in CHALLENGES:
        raise ValueError(f"unknown challenge {name!r}; expected one of {sorted(CHALLENGES)}")
    return CHALLENGES[name]


def package_submission(pred_dir: str | Path, challenge: str, out_zip: str | Path, file_ending: str = ".nii.gz") -> list[str]:
    """Rename (and for BraTS relabel) every prediction of ``pred_dir`` and zip them flat into
    ``out_zip`` (written through a temporary file). Returns the archive's member names."""
    import SimpleITK as sitk

    rule = _challenge(challenge)
    pred_dir, out_zip = Path(pred_dir), Path(out_zip)
    files = sorted(p for p in pred_dir.glob(f"*{file_ending}") if not p.name.startswith("."))
    if not files:
        raise EvaluationInputError(f"{pred_dir}: no predictions ending in {file_ending!r}")
    names = [submission_name(p.name[: -len(file_ending)], challenge) for p in files]
    if len(set(names)) != len(names):
        raise EvaluationInputError(f"{pred_dir}: two predictions map to the same submission name")
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_zip.parent, prefix=".submission.") as tmp:
        staged = Path(tmp)
        for source, name in zip(files, names):
            if rule.label_map is None:
                shutil.copyfile(source, staged / name)
                continue
            try:
                image = sitk.ReadImage(str(source))
            except RuntimeError as error:
                raise EvaluationInputError(f"{source}: cannot be read as an image") from error
            mapped = sitk.GetImageFromArray(map_labels(sitk.GetArrayFromImage(image), rule.label_map, source))
            mapped.CopyInformation(image)
            sitk.WriteImage(mapped, str(staged / name), useCompression=True)
        tmp_zip = staged / "archive.zip"
        with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_STORED) as archive:
            for name in names:
                archive.write(staged / name, arcname=name)
        shutil.move(str(tmp_zip), str(out_zip))
    return names
