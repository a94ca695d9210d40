"""Each dataset's real raw layout, served from a loopback server, through the real
download + convert code to an nnU-Net raw folder that nnU-Net's integrity check accepts."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import data_rawfixtures as rf
import numpy as np
import pytest
import SimpleITK as sitk
from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

from mednext.data.prepare import prepare_dataset
from mednext.data.registry import KITS19_COMMIT, DatasetSpec, get_dataset

TOKEN = "test-token-not-secret"
BRATS_TAR = "RSNA_ASNR_MICCAI_BraTS2021_TrainingData_16July2021.tar"


def serve_synapse(server, entity: str, body: bytes, md5: str | None = None) -> None:
    """Synapse REST: /entity/{id}/file redirects to a presigned storage URL that must get no credentials."""
    server.add(f"/repo/v1/entity/{entity}/file", bearer=TOKEN, redirect=f"{server.url}/storage/{entity}.bin")
    server.add(f"/storage/{entity}.bin", body, forbid_auth=True)
    handles = [
        {"concreteType": "org.sagebionetworks.repo.model.file.PreviewFileHandle", "contentMd5": "0" * 32},
        {"concreteType": "org.sagebionetworks.repo.model.file.S3FileHandle",
         "contentMd5": md5 or hashlib.md5(body).hexdigest()},
    ]
    server.add(f"/repo/v1/entity/{entity}/filehandles", json.dumps({"list": handles}).encode(), bearer=TOKEN)


def serve_amos(server, body: bytes, published_md5: str | None = None) -> None:
    server.add("/records/7155725/files/amos22.zip", body)
    md5 = published_md5 or hashlib.md5(body).hexdigest()
    meta = {"id": 7155725, "files": [{"key": "other.txt", "checksum": "md5:" + "1" * 32},
                                     {"key": "amos22.zip", "checksum": f"md5:{md5}"}]}
    server.add("/api/records/7155725", json.dumps(meta).encode())


def kits_spec(n_cases: int) -> DatasetSpec:
    """The registry's KiTS19 entry limited to the fixture's first ``n_cases`` imaging files."""
    spec = get_dataset("kits19")
    keep = {f"case_{i:05d}.nii.gz" for i in range(n_cases)}
    return dataclasses.replace(spec, files=tuple(f for f in spec.files if f.is_archive or f.filename in keep))


def serve_kits(server, repo_zip: bytes, images: dict[str, bytes]) -> None:
    server.add(f"/neheller/kits19/archive/{KITS19_COMMIT}.zip", repo_zip)
    for case, data in images.items():
        server.add(f"/datasets/neheller/KiTS-Challenge-Imaging/resolve/main/images/{case}.nii.gz", data)


def read_labels(folder: Path) -> dict[str, np.ndarray]:
    return {p.name[:-7]: sitk.GetArrayFromImage(sitk.ReadImage(str(p))) for p in sorted((folder / "labelsTr").iterdir())}


def check_raw_folder(folder: Path, spec: DatasetSpec, expected_labels: dict[str, np.ndarray]) -> None:
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["channel_names"] == spec.channel_dict()
    assert meta["labels"] == spec.label_dict()
    assert meta["numTraining"] == len(expected_labels)
    images = sorted(p.name for p in (folder / "imagesTr").iterdir())
    assert images == sorted(f"{c}_{i:04d}.nii.gz" for c in expected_labels for i in range(len(spec.channel_names)))
    labels = read_labels(folder)
    assert sorted(labels) == sorted(expected_labels)
    for case, source in expected_labels.items():
        np.testing.assert_array_equal(labels[case], source)
    verify_dataset_integrity(str(folder), num_processes=1)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temp folders left beside it


def test_btcv_from_synapse(tmp_path: Path, nnunet_env, http_server, monkeypatch) -> None:
    body, labels = rf.btcv_archive()
    serve_synapse(http_server, "syn3379050", body)
    monkeypatch.setenv("SYNAPSE_AUTH_TOKEN", TOKEN)
    spec = get_dataset("btcv")
    folder = prepare_dataset("btcv", tmp_path / "dl", nnunet_env["nnUNet_raw"], mirror=http_server.url,
                             expected_cases=3, progress=False)
    assert folder == nnunet_env["nnUNet_raw"] / "Dataset017_BTCV"
    check_raw_folder(folder, spec, labels)  # the Testing case img0061 is not converted
    # the token reached Synapse but was not forwarded to the storage host (the route would answer 400)
    auth = [(p, h.get("authorization")) for p, h in http_server.requests]
    assert ("/repo/v1/entity/syn3379050/file", f"Bearer {TOKEN}") in auth
    assert ("/storage/syn3379050.bin", None) in auth
    # images are the published bytes, untouched
    with_raw = tmp_path / "dl" / "btcv" / "source" / "RawData" / "Training" / "img" / "img0005.nii.gz"
    assert (folder / "imagesTr" / "BTCV_0005_0000.nii.gz").read_bytes() == with_raw.read_bytes()


def test_amos22_from_zenodo_excludes_mri(tmp_path: Path, nnunet_env, http_server) -> None:
    body, labels = rf.amos22_archive()
    serve_amos(http_server, body)
    folder = prepare_dataset("amos22", tmp_path / "dl", nnunet_env["nnUNet_raw"], mirror=http_server.url,
                             expected_cases=3, progress=False)
    assert sorted(labels) == ["amos_0001", "amos_0004", "amos_0005"]  # amos_0507 (MRI) excluded
    check_raw_folder(folder, get_dataset("amos22"), labels)
    lock = json.loads((tmp_path / "dl" / "amos22" / "checksums.lock.json").read_text())
    assert lock["amos22.zip"]["md5"] == hashlib.md5(body).hexdigest()
    assert lock["amos22.zip"]["sha256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.slow
def test_kits19_from_github_and_huggingface_with_plan_and_preprocess_cli(tmp_path: Path, nnunet_env, http_server) -> None:
    repo_zip, images, labels = rf.kits19_files(KITS19_COMMIT, n_cases=5)
    serve_kits(http_server, repo_zip, images)
    spec = kits_spec(5)
    folder = prepare_dataset(spec, tmp_path / "dl", nnunet_env["nnUNet_raw"], mirror=http_server.url,
                             expected_cases=5, progress=False)
    assert folder.name == "Dataset040_KiTS19"
    source = tmp_path / "dl" / "kits19" / "source" / "data"
    assert sorted(p.name for p in (source / "case_00003").iterdir()) == ["imaging.nii.gz", "segmentation.nii.gz"]
    check_raw_folder(folder, spec, labels)
    # no published checksums: every file's SHA-256 is recorded on first download
    lock = json.loads((tmp_path / "dl" / "kits19" / "checksums.lock.json").read_text())
    assert sorted(lock) == sorted([f"kits19-{KITS19_COMMIT}.zip"] + [f"{c}.nii.gz" for c in images])
    assert lock["case_00002.nii.gz"]["sha256"] == hashlib.sha256(images["case_00002"]).hexdigest()
    # the real nnU-Net CLI accepts the folder
    bin_dir = Path(sys.executable).parent
    run = subprocess.run(
        [str(bin_dir / "nnUNetv2_plan_and_preprocess"), "-d", "40", "--verify_dataset_integrity", "-c", "3d_fullres",
         "-np", "1", "-npfp", "1", "--no_pbar"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "verify_dataset_integrity Done" in run.stdout
    pre = nnunet_env["nnUNet_preprocessed"] / "Dataset040_KiTS19"
    assert sorted(p.name[:-7] for p in (pre / "gt_segmentations").iterdir()) == sorted(labels)


def test_brats21_from_synapse_remaps_labels(tmp_path: Path, nnunet_env, http_server, monkeypatch) -> None:
    body, labels = rf.brats21_archive(n_cases=3)
    serve_synapse(http_server, "syn4242", body)
    monkeypatch.setenv("SYNAPSE_AUTH_TOKEN", TOKEN)
    spec = get_dataset("brats21")
    folder = prepare_dataset("brats21", tmp_path / "dl", nnunet_env["nnUNet_raw"], mirror=http_server.url,
                             synapse_ids={BRATS_TAR: "syn4242"}, expected_cases=3, progress=False)
    # independent statement of the BraTS -> nnU-Net convention: NCR 1 -> 2, ED 2 -> 1, ET 4 -> 3
    expected = {c: np.select([a == 1, a == 2, a == 4], [2, 1, 3], 0).astype(np.uint8) for c, a in labels.items()}
    check_raw_folder(folder, spec, expected)
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"}
    # channel order: _0001 is the t1ce file of the source
    src = tmp_path / "dl" / "brats21" / "source" / "RSNA_ASNR_MICCAI_BraTS2021_TrainingData_16July2021" / "BraTS2021_00001"
    assert ((folder / "imagesTr" / "BraTS2021_00001_0001.nii.gz").read_bytes()
            == (src / "BraTS2021_00001_t1ce.nii.gz").read_bytes())


def test_synthetic_through_prepare(tmp_path: Path, nnunet_env) -> None:
    folder = prepare_dataset("synthetic", tmp_path / "dl", expected_cases=5)
    assert folder == nnunet_env["nnUNet_raw"] / "Dataset990_SyntheticAbdomen"
    assert len(list((folder / "labelsTr").iterdir())) == 5
    meta = json.loads((folder / "dataset.json").read_text())
    spec = get_dataset("synthetic")
    assert meta["labels"] == spec.label_dict() and meta["channel_names"] == spec.channel_dict()


#: Foreground label values and names (source numbering), evaluation regions on nnU-Net labels and training
#: case counts, transcribed from the challenges' and the official code's own label lists (MedNeXt
#: Task017_BeyondCranialVaultAbdominalOrganSegmentation.py and region_based_evaluation.py for BTCV and
#: AMOS22, the kits19 README, nnU-Net Dataset137_BraTS21.py; docs/sources.md#datasets) and the paper (§3.2);
#: the regions in the mean over classes are the official MedNeXt evaluation's (region_based_evaluation.py
#: get_kits19_regions: KiTS19 kidney = (1,) only, tumor = (2,); docs/sources.md#official-evaluation).
#: Independent of the registry's text.
REFERENCE = {
    "btcv": (30, {1: "spleen", 2: "right kidney", 3: "left kidney", 4: "gallbladder", 5: "esophagus", 6: "liver",
                  7: "stomach", 8: "aorta", 9: "inferior vena cava", 10: "portal and splenic vein", 11: "pancreas",
                  12: "right adrenal gland", 13: "left adrenal gland"}, None),
    "amos22": (200, {1: "spleen", 2: "right kidney", 3: "left kidney", 4: "gallbladder", 5: "esophagus", 6: "liver",
                     7: "stomach", 8: "aorta", 9: "postcava", 10: "pancreas", 11: "right adrenal gland",
                     12: "left adrenal gland", 13: "duodenum", 14: "bladder", 15: "prostate uterus"}, None),
    "kits19": (210, {1: "kidney", 2: "tumor"}, {"kidney": (1,), "tumor": (2,)}),
    "brats21": (1251, {1: "non enhancing and necrosis", 2: "edema", 4: "enhancing tumor"},
                {"WT": (1, 2, 3), "TC": (2, 3), "ET": (3,)}),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_registry_entries_match_the_reference(name: str) -> None:
    """Label names and values, the remap into nnU-Net's consecutive values and the regions, checked
    against the challenges' own numbering (not against the registry's other fields)."""
    spec = get_dataset(name)
    cases, source_labels, regions = REFERENCE[name]
    assert spec.expected_training_cases == cases
    remap = spec.remap()
    named = {source: spec.labels[remap[source]].replace("_", " ") for source in source_labels}
    assert named == source_labels  # each source value lands on the label of that name
    assert sorted(spec.source_label_values) == [0, *source_labels]
    in_mean = {r.name: r.labels for r in spec.regions if r.in_mean}
    if regions is not None:
        assert in_mean == regions
    else:  # one region per organ, named by it
        assert {v: k.replace("_", " ") for k, v in in_mean.items()} == {(remap[v],): n for v, n in source_labels.items()}
