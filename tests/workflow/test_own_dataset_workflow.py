"""Bring your own dataset: an nnU-Net v2 raw folder outside the repository, named only in a
config file, runs through the real Snakemake DAG to a row of results_other_datasets; a bad folder
stops the dry run with one line naming the offending file."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from mednext.data.synthetic import write_synthetic_dataset
from tests.workflow.conftest import REPO, run_snakemake, train_job_of

PATCH = [32, 32, 32]


def own_config(tmp_path: Path, folder: Path, **entry: object) -> Path:
    """The demo config cut to one network, one fold and one short epoch, on ``folder`` only."""
    config = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    config["datasets"] = [{"name": "liver_toy", "nnunet_raw": str(folder), **entry}]
    config["networks"] = ["nnUNet"]
    config["folds"] = [0]
    config.pop("ablations", None)
    config["planning"]["patch_3d"] = PATCH
    config["training"].update(epochs=1, iterations_per_epoch=1, val_iterations=1)
    config["evaluation"]["spacing_modes"] = ["paper"]
    config["paths"] = {key: str(tmp_path / "run" / key) for key in config["paths"]}
    config["reported"] = str(REPO / "paper_tables" / "reported")
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def own_folder(root: Path) -> Path:
    """Five small synthetic cases as ``root/Dataset501_LiverToy`` (id and name unknown to the registry)."""
    return write_synthetic_dataset(root, dataset_id=501, name="LiverToy", n_cases=5, shape=(12, 32, 32))


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_own_nnunet_raw_folder_runs_to_a_results_row(tmp_path: Path) -> None:
    folder = own_folder(tmp_path / "elsewhere")
    before = snapshot(folder)
    labels = json.loads((folder / "dataset.json").read_text())["labels"]
    config = own_config(tmp_path, folder, regions={"all_organs": [1, 2, 3]})

    run_snakemake("all_tables", "--cores", "2", "--configfile", str(config))

    run = tmp_path / "run"
    other = pd.read_csv(run / "tables/results_other_datasets.csv")
    rows = other[(other["dataset"] == "liver_toy") & (other["network"] == "nnUNet")]
    assert sorted(rows["metric"]) == ["DSC", "SDC"] and (rows["folds_done"] == 1).all()
    assert rows["reproduced"].between(0, 100).all()
    header = (run / "tables/results_other_datasets.md").read_text().splitlines()[2]
    assert "reported" not in header
    # Scored per label of the folder's own dataset.json, plus the declared region.
    metrics = pd.read_csv(run / "results/liver_toy/nnUNet/fold_0/metrics.csv")
    assert set(metrics["class"]) - {"mean_over_classes"} == {n for n, v in labels.items() if v} | {"all_organs"}
    # Planned by nnU-Net at 1 mm with the configured patch, under the folder's own nnU-Net id.
    plans = json.loads((run / "nnunet/nnUNet_preprocessed/Dataset501_LiverToy/nnUNetPlans_1mm.json").read_text())
    assert plans["configurations"]["3d_fullres"]["spacing"] == [1.0, 1.0, 1.0]
    assert plans["configurations"]["3d_fullres"]["patch_size"] == PATCH
    # Linked, not copied or downloaded; the user's folder is untouched.
    assert (run / "nnunet/nnUNet_raw/Dataset501_LiverToy/labelsTr").resolve() == (folder / "labelsTr").resolve()
    assert snapshot(folder) == before


def _missing_dataset_json(folder: Path) -> Path:
    (folder / "dataset.json").unlink()
    return folder / "dataset.json"


def _label_outside_dataset_json(folder: Path) -> Path:
    path = folder / "labelsTr" / "synth_002.nii.gz"
    image = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(image)
    array[0, 0, 0] = 7  # dataset.json's labels stop at 3
    bad = sitk.GetImageFromArray(array)
    bad.CopyInformation(image)
    sitk.WriteImage(bad, str(path), True)
    return path


def _geometry_mismatch(folder: Path) -> Path:
    path = folder / "imagesTr" / "synth_001_0000.nii.gz"
    image = sitk.ReadImage(str(path))
    cropped = sitk.GetImageFromArray(sitk.GetArrayFromImage(image)[:, :, :-2])
    cropped.CopyInformation(image[:-2, :, :])
    sitk.WriteImage(cropped, str(path), True)
    return path


@pytest.mark.parametrize(("corrupt", "problem"), [
    (_missing_dataset_json, "missing"),
    (_label_outside_dataset_json, r"label values [7] out of range"),
    (_geometry_mismatch, "image/label shape mismatch"),
])
def test_bad_own_folder_stops_the_dry_run_naming_the_file(tmp_path: Path, corrupt, problem: str) -> None:
    folder = own_folder(tmp_path / "elsewhere")
    bad_file = corrupt(folder)
    result = run_snakemake("all_tables", "-n", "--cores", "1", "--configfile", str(own_config(tmp_path, folder)),
                           check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    lines = [line for line in output.splitlines() if problem in line]
    assert len(lines) == 1 and str(bad_file) in lines[0], output[-2000:]
    assert not (tmp_path / "run" / "nnunet" / "nnUNet_raw").exists()


def test_an_own_dataset_named_after_kits19_keeps_the_mednext_learning_rate(tmp_path: Path) -> None:
    """§3.1's lower kernel-5 rate belongs to KiTS19 only: an own dataset whose name and nnU-Net folder contain
    'kits19' trains kernel 5 at 1e-3. The train job carries the dataset's registry key, and the trainer looks
    the override up by that key, not by a substring of the folder name."""
    import shlex

    from mednext.networks import get_network, lr_for

    folder = write_synthetic_dataset(tmp_path / "elsewhere", dataset_id=502, name="KiTS19Private", n_cases=5,
                                     shape=(12, 32, 32))
    config = yaml.safe_load(own_config(tmp_path, folder).read_text())
    config["datasets"][0]["name"] = "kits19_private"
    config["networks"] = ["MedNeXt-S_k5"]  # with its UpKern parent MedNeXt-S_k3
    path = tmp_path / "kits_named.yaml"
    path.write_text(yaml.safe_dump(config))
    out = run_snakemake("all_tables", "-n", "-p", "--forceall", "--cores", "1", "--configfile", str(path)).stdout
    lines = [line for line in out.splitlines() if " train --dataset " in line]
    commands = [shlex.split(line.split("Shell command: ", 1)[-1]) for line in lines]
    jobs = {words[words.index("--network") + 1]: json.loads(train_job_of(line)) for words, line in zip(commands, lines)}
    assert set(jobs) == {"MedNeXt-S_k3", "MedNeXt-S_k5"}
    assert {words[words.index("--dataset") + 1] for words in commands} == {"Dataset502_KiTS19Private"}
    k5 = jobs["MedNeXt-S_k5"]
    assert k5["dataset"] == "kits19_private"
    assert lr_for(get_network("MedNeXt-S_k5"), k5["dataset"], k5["settings"]["lr_overrides"]) == 1e-3
    assert lr_for(get_network("MedNeXt-S_k5"), "kits19", k5["settings"]["lr_overrides"]) == 1e-4  # the real KiTS19
