"""Bad input gives one clear error and leaves no output folder behind."""

from __future__ import annotations

import hashlib
from pathlib import Path

import data_rawfixtures as rf
import numpy as np
import pytest
from test_data_prepare import TOKEN, kits_spec, serve_amos, serve_kits, serve_synapse

from mednext.data.errors import ChecksumError, ConversionError, CredentialsMissingError, DownloadError
from mednext.data.prepare import prepare_dataset
from mednext.data.registry import KITS19_COMMIT, get_dataset
from mednext.data.sources import fetch_sources

KITS_ZIP = f"/neheller/kits19/archive/{KITS19_COMMIT}.zip"


def assert_no_output(raw_root: Path) -> None:
    """Nothing at all in nnUNet_raw: neither the dataset folder nor a temporary one."""
    assert list(raw_root.iterdir()) == []


def test_corrupted_archive_fails_published_checksum(tmp_path: Path, nnunet_env, http_server) -> None:
    good, _ = rf.amos22_archive()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    serve_amos(http_server, bytes(bad), published_md5=hashlib.md5(good).hexdigest())
    with pytest.raises(ChecksumError) as err:
        prepare_dataset("amos22", tmp_path / "dl", nnunet_env["nnUNet_raw"], mirror=http_server.url,
                        expected_cases=3, retry_wait_s=0, progress=False)
    message = str(err.value)
    assert "checksum mismatch for amos22.zip" in message
    assert f"expected md5 {hashlib.md5(good).hexdigest()}" in message and hashlib.md5(bad).hexdigest() in message
    assert "corrupted download was deleted" in message
    assert_no_output(nnunet_env["nnUNet_raw"])
    assert list((tmp_path / "dl" / "amos22" / "files").iterdir()) == []  # neither amos22.zip nor .part


def test_truncated_download_fails_then_resumes_with_range(tmp_path: Path, nnunet_env, http_server) -> None:
    repo_zip, images, labels = rf.kits19_files(KITS19_COMMIT, n_cases=3)
    serve_kits(http_server, repo_zip, images)
    cut = len(repo_zip) // 3
    http_server.routes[KITS_ZIP].update(truncate=cut, truncate_times=2)
    spec = kits_spec(3)
    with pytest.raises(DownloadError) as err:
        prepare_dataset(spec, tmp_path / "dl", nnunet_env["nnUNet_raw"], mirror=http_server.url,
                        expected_cases=3, retries=1, retry_wait_s=0, progress=False)
    assert f"truncated: received {cut} of {len(repo_zip)} bytes" in str(err.value)
    assert "run again to resume" in str(err.value)
    assert_no_output(nnunet_env["nnUNet_raw"])
    files = tmp_path / "dl" / "kits19" / "files"
    assert not (files / f"kits19-{KITS19_COMMIT}.zip").exists()
    assert (files / f"kits19-{KITS19_COMMIT}.zip.part").stat().st_size == cut
    # the second attempt of the first call already asked for the rest; the next call resumes and completes
    ranges = [h.get("range") for p, h in http_server.requests if p == KITS_ZIP]
    assert ranges == [None, f"bytes={cut}-"]
    http_server.routes[KITS_ZIP]["truncate_times"] = 0
    folder = prepare_dataset(spec, tmp_path / "dl", nnunet_env["nnUNet_raw"], mirror=http_server.url,
                             expected_cases=3, retry_wait_s=0, progress=False)
    assert [h.get("range") for p, h in http_server.requests if p == KITS_ZIP][-1] == f"bytes={cut}-"
    assert (files / f"kits19-{KITS19_COMMIT}.zip").read_bytes() == repo_zip
    assert sorted(p.name for p in (folder / "labelsTr").iterdir()) == [f"{c}.nii.gz" for c in sorted(labels)]


def test_changed_file_fails_the_recorded_checksum(tmp_path: Path, http_server) -> None:
    repo_zip, images, _ = rf.kits19_files(KITS19_COMMIT, n_cases=1)
    serve_kits(http_server, repo_zip, images)
    spec = kits_spec(1)
    fetch_sources(spec, tmp_path / "dl", mirror=http_server.url, progress=False)  # records SHA-256s
    (tmp_path / "dl" / "kits19" / "files" / "case_00000.nii.gz").unlink()
    http_server.add("/datasets/neheller/KiTS-Challenge-Imaging/resolve/main/images/case_00000.nii.gz", b"other bytes")
    with pytest.raises(ChecksumError, match=r"case_00000.nii.gz.*recorded in .*checksums.lock.json on first download"):
        fetch_sources(spec, tmp_path / "dl", mirror=http_server.url, retry_wait_s=0, progress=False)
    assert not (tmp_path / "dl" / "kits19" / "files" / "case_00000.nii.gz").exists()


def test_missing_token_lists_files_to_place_and_placing_them_works(tmp_path: Path, nnunet_env, http_server, monkeypatch) -> None:
    monkeypatch.delenv("SYNAPSE_AUTH_TOKEN", raising=False)
    body, labels = rf.btcv_archive()
    serve_synapse(http_server, "syn3379050", body)
    downloads = tmp_path / "dl"
    with pytest.raises(CredentialsMissingError) as err:
        prepare_dataset("btcv", downloads, nnunet_env["nnUNet_raw"], mirror=http_server.url, expected_cases=3,
                        progress=False)
    target = downloads / "btcv" / "files" / "RawData.zip"
    message = str(err.value)
    assert "SYNAPSE_AUTH_TOKEN is not set" in message
    assert f"RawData.zip  from https://www.synapse.org/#!Synapse:syn3379050  ->  {target}" in message
    assert http_server.requests == []  # nothing was attempted without credentials
    assert_no_output(nnunet_env["nnUNet_raw"])
    target.write_bytes(body)  # the user follows the message
    folder = prepare_dataset("btcv", downloads, nnunet_env["nnUNet_raw"], mirror=http_server.url, expected_cases=3,
                             progress=False)
    assert sorted(p.name[:-7] for p in (folder / "labelsTr").iterdir()) == sorted(labels)
    assert http_server.requests == []


def test_synapse_file_without_recorded_id_needs_it_or_hand_placement(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SYNAPSE_AUTH_TOKEN", TOKEN)
    with pytest.raises(CredentialsMissingError,
                       match="entity id of RSNA_ASNR_MICCAI_BraTS2021_TrainingData_16July2021.tar is not recorded"):
        fetch_sources(get_dataset("brats21"), tmp_path / "dl", progress=False)


def _bad_btcv_label(case: str, arrays: dict[str, np.ndarray]) -> None:
    if case == "BTCV_0002":
        arrays["label"][0, 0, 0] = 14


def test_label_out_of_range(tmp_path: Path, nnunet_env, http_server, monkeypatch) -> None:
    body, _ = rf.btcv_archive(mutate=_bad_btcv_label)
    serve_synapse(http_server, "syn3379050", body)
    monkeypatch.setenv("SYNAPSE_AUTH_TOKEN", TOKEN)
    with pytest.raises(ConversionError, match=r"case BTCV_0002: label values \[14\] out of range in label0002.nii.gz"):
        prepare_dataset("btcv", tmp_path / "dl", nnunet_env["nnUNet_raw"], mirror=http_server.url, expected_cases=3,
                        progress=False)
    assert_no_output(nnunet_env["nnUNet_raw"])


def _short_kits_label(case: str, arrays: dict[str, np.ndarray]) -> None:
    if case == "case_00001":
        arrays["label"] = arrays["label"][:-1]


def test_image_label_shape_mismatch(tmp_path: Path, nnunet_env, http_server) -> None:
    repo_zip, images, _ = rf.kits19_files(KITS19_COMMIT, n_cases=3, mutate=_short_kits_label)
    serve_kits(http_server, repo_zip, images)
    with pytest.raises(ConversionError) as err:
        prepare_dataset(kits_spec(3), tmp_path / "dl", nnunet_env["nnUNet_raw"], mirror=http_server.url,
                        expected_cases=3, progress=False)
    assert str(err.value) == (
        "case case_00001: image/label shape mismatch: CT image imaging.nii.gz has shape (6, 12, 10) (z, y, x), "
        "label segmentation.nii.gz has (5, 12, 10)"
    )
    assert_no_output(nnunet_env["nnUNet_raw"])


def _run_brats(tmp_path: Path, nnunet_env, http_server, monkeypatch, **archive_kwargs) -> ConversionError:
    body, _ = rf.brats21_archive(n_cases=3, **archive_kwargs)
    serve_synapse(http_server, "syn4242", body)
    monkeypatch.setenv("SYNAPSE_AUTH_TOKEN", TOKEN)
    with pytest.raises(ConversionError) as err:
        prepare_dataset("brats21", tmp_path / "dl", nnunet_env["nnUNet_raw"], mirror=http_server.url,
                        synapse_ids={"RSNA_ASNR_MICCAI_BraTS2021_TrainingData_16July2021.tar": "syn4242"},
                        expected_cases=3, progress=False)
    assert_no_output(nnunet_env["nnUNet_raw"])
    return err.value


def test_missing_modality(tmp_path: Path, nnunet_env, http_server, monkeypatch) -> None:
    error = _run_brats(tmp_path, nnunet_env, http_server, monkeypatch, skip={"BraTS2021_00002_t1ce"})
    assert str(error).startswith("case BraTS2021_00002: missing modality T1ce (expected file ")
    assert str(error).endswith("BraTS2021_00002/BraTS2021_00002_t1ce.nii.gz)")


def _nan_flair(case: str, arrays: dict[str, np.ndarray]) -> None:
    if case == "BraTS2021_00001":
        arrays["flair"][2, 3, 4:7] = np.nan


def test_nan_image(tmp_path: Path, nnunet_env, http_server, monkeypatch) -> None:
    error = _run_brats(tmp_path, nnunet_env, http_server, monkeypatch, mutate=_nan_flair)
    assert str(error) == "case BraTS2021_00001: FLAIR image BraTS2021_00001_flair.nii.gz contains 3 NaN voxels"


def test_wrong_case_count_is_caught_with_the_paper_default(tmp_path: Path, nnunet_env, http_server) -> None:
    body, _ = rf.amos22_archive()
    serve_amos(http_server, body)
    with pytest.raises(ConversionError, match="amos22: expected 200 training cases, found 3"):
        prepare_dataset("amos22", tmp_path / "dl", nnunet_env["nnUNet_raw"], mirror=http_server.url, progress=False)
    assert_no_output(nnunet_env["nnUNet_raw"])
