"""Download and unpack details: mirror rewriting, HTTP errors, unsafe archives, spacing checks, registry lookup."""

from __future__ import annotations

import hashlib
from pathlib import Path

import data_rawfixtures as rf
import numpy as np
import pytest

from mednext.data.convert import validate_case
from mednext.data.download import ChecksumLock, apply_mirror, http_download
from mednext.data.errors import ChecksumError, ConversionError, DataError, DownloadError, UnknownDatasetError
from mednext.data.layouts import RawCase
from mednext.data.registry import DATASETS, get_dataset
from mednext.data.sources import extract_archive


def test_apply_mirror_keeps_path_and_query(monkeypatch) -> None:
    url = "https://zenodo.org/records/7155725/files/amos22.zip?download=1"
    assert apply_mirror(url, "http://127.0.0.1:8000") == "http://127.0.0.1:8000/records/7155725/files/amos22.zip?download=1"
    assert apply_mirror(url, "http://mirror/base/") == "http://mirror/base/records/7155725/files/amos22.zip?download=1"
    monkeypatch.delenv("MEDNEXT_DATA_MIRROR", raising=False)
    assert apply_mirror(url) == url
    monkeypatch.setenv("MEDNEXT_DATA_MIRROR", "http://127.0.0.1:9")
    assert apply_mirror(url).startswith("http://127.0.0.1:9/records/")


def test_http_404_is_reported_without_retry(tmp_path: Path, http_server) -> None:
    with pytest.raises(DownloadError, match=r"download of http://127\.0\.0\.1:\d+/missing\.zip failed: HTTP 404"):
        http_download(f"{http_server.url}/missing.zip", tmp_path / "missing.zip", retry_wait_s=0, progress=False)
    assert http_server.paths_requested() == ["/missing.zip"]
    assert list(tmp_path.iterdir()) == []


def test_stale_partial_file_is_restarted_on_416(tmp_path: Path, http_server) -> None:
    body = bytes(range(256)) * 40
    http_server.add("/f.bin", body)
    (tmp_path / "f.bin.part").write_bytes(b"x" * (len(body) + 10))  # longer than the file: server answers 416
    digests = http_download(f"{http_server.url}/f.bin", tmp_path / "f.bin", expected_md5=hashlib.md5(body).hexdigest(),
                            lock=ChecksumLock(tmp_path / "lock.json"), retry_wait_s=0, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == body and digests.size == len(body)
    assert not (tmp_path / "f.bin.part").exists()


def test_hand_placed_file_with_wrong_published_md5_is_refused(tmp_path: Path) -> None:
    from mednext.data.download import verify_file

    path = tmp_path / "RawData.zip"
    path.write_bytes(b"not the archive")
    with pytest.raises(ChecksumError, match="expected md5 0{32}"):
        verify_file(path, expected_md5="0" * 32, lock=None, source="synapse")


def test_unsafe_archive_members_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    archive.write_bytes(rf.zip_bytes({"ok/a.txt": b"a", "../escape.txt": b"b"}))
    with pytest.raises(DataError, match="unsafe archive member '../escape.txt'"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    broken = tmp_path / "broken.tar"
    broken.write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="cannot unpack"):
        extract_archive(broken, tmp_path / "out2")


def test_spacing_mismatch_names_case_and_both_spacings(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    (tmp_path / "img.nii.gz").write_bytes(rf.nifti_bytes(rf.ct_volume(rng), spacing=(3.0, 0.8, 0.75)))
    (tmp_path / "seg.nii.gz").write_bytes(rf.nifti_bytes(rf.label_volume(rng, [1, 2]), spacing=(2.5, 0.8, 0.75)))
    case = RawCase("case_00007", (tmp_path / "img.nii.gz",), tmp_path / "seg.nii.gz")
    with pytest.raises(ConversionError, match=r"case case_00007: image/label spacing mismatch: CT image img.nii.gz has "
                                              r"spacing \(3, 0.8, 0.75\) mm \(z, y, x\), "
                                              r"label seg.nii.gz has \(2.5, 0.8, 0.75\)"):
        validate_case(case, get_dataset("kits19"))


def test_get_dataset_lookups_and_unknown_name() -> None:
    assert get_dataset("BraTS21") is DATASETS["brats21"]
    assert get_dataset("Dataset017_BTCV") is DATASETS["btcv"]
    assert get_dataset("40") is DATASETS["kits19"]
    with pytest.raises(UnknownDatasetError) as err:
        get_dataset("lits")
    assert str(err.value).startswith("unknown dataset 'lits'; expected one of: btcv (Dataset017_BTCV), amos22")
    ids = [s.dataset_id for s in DATASETS.values()]
    assert len(set(ids)) == len(ids)
