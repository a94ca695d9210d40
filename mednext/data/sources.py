"""Fetch a dataset's source files (HTTP, Zenodo, Synapse or by hand) and unpack them into its raw layout.

Layout under ``downloads_dir/<key>/``: ``files/`` holds the fetched files exactly as published,
``checksums.lock.json`` their recorded digests, and ``source/`` the unpacked tree in the dataset's
own raw layout (e.g. ``RawData/Training/img`` for BTCV, ``data/case_00000`` for KiTS19). Synapse
files need a token from ``$SYNAPSE_AUTH_TOKEN``; without one the error lists which files to place
where by hand, and files placed there are verified and used.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from mednext.atomic import atomic_directory
from mednext.data.download import LOCK_NAME, ChecksumLock, apply_mirror, fetch_json, http_download, verify_file
from mednext.data.errors import CredentialsMissingError, DataError, DownloadError
from mednext.data.registry import SYNAPSE_REPO, ZENODO, DatasetSpec, SourceFile

LOG = logging.getLogger(__name__)
_STAMP = ".complete.json"


def dataset_download_dir(downloads_dir: Path, spec: DatasetSpec) -> Path:
    """``downloads_dir/<key>``."""
    return Path(downloads_dir) / spec.key


def _synapse_id(file: SourceFile, synapse_ids: Mapping[str, str]) -> str | None:
    return synapse_ids.get(file.filename) or file.synapse_id


def _manual_instructions(spec: DatasetSpec, files: list[SourceFile], files_dir: Path, ids: Mapping[str, str]) -> str:
    lines = []
    for f in files:
        where = f.page or (f"https://www.synapse.org/#!Synapse:{_synapse_id(f, ids)}" if _synapse_id(f, ids) else spec.homepage)
        lines.append(f"  {f.filename}  from {where}  ->  {files_dir / f.filename}")
    return "\n".join(lines)


def _check_access(
    spec: DatasetSpec, missing: list[SourceFile], files_dir: Path, synapse_ids: Mapping[str, str]
) -> str | None:
    """Return the Synapse token when one is needed and set; raise with hand-placement steps otherwise."""
    synapse_files = [f for f in missing if f.url is None]
    if not synapse_files:
        return None
    env = spec.credential_env or "SYNAPSE_AUTH_TOKEN"
    token = os.environ.get(env, "").strip()
    if not token:
        raise CredentialsMissingError(
            f"{spec.key}: {env} is not set, and these files are not in place yet. Either set {env} to a Synapse "
            f"personal access token (synapse.org > Account Settings > Personal Access Tokens; accept the "
            f"dataset's terms first) and run again, or download them by hand and place them exactly here, then run "
            f"again:\n{_manual_instructions(spec, synapse_files, files_dir, synapse_ids)}"
        )
    no_id = [f for f in synapse_files if _synapse_id(f, synapse_ids) is None]
    if no_id:
        raise CredentialsMissingError(
            f"{spec.key}: the Synapse entity id of {', '.join(f.filename for f in no_id)} is not recorded in the "
            f"registry; look it up on the project page and pass it (--synapse-id FILE=synNNN), or place the file "
            f"by hand:\n{_manual_instructions(spec, no_id, files_dir, synapse_ids)}"
        )
    return token


def _zenodo_md5(record: str, filename: str, mirror: str | None) -> str | None:
    """MD5 that Zenodo publishes for ``filename`` in ``record`` (``/api/records/<id>``)."""
    meta = fetch_json(apply_mirror(f"{ZENODO}/api/records/{record}", mirror))
    files = meta.get("files", []) if isinstance(meta, dict) else []
    if isinstance(files, dict):  # older API shape: {"entries": {name: {...}}}
        files = list(files.get("entries", {}).values())
    for entry in files:
        if entry.get("key") == filename and str(entry.get("checksum", "")).startswith("md5:"):
            return str(entry["checksum"])[4:]
    raise DownloadError(f"Zenodo record {record} lists no md5 checksum for {filename}")


def _synapse_md5(entity: str, token: str, mirror: str | None) -> str | None:
    """MD5 of the data file handle Synapse publishes for ``entity`` (None if it lists none)."""
    url = apply_mirror(f"{SYNAPSE_REPO}/repo/v1/entity/{entity}/filehandles", mirror)
    meta = fetch_json(url, private_headers={"Authorization": f"Bearer {token}"})
    for handle in meta.get("list", []) if isinstance(meta, dict) else []:
        if "Preview" not in str(handle.get("concreteType", "")) and handle.get("contentMd5"):
            return str(handle["contentMd5"])
    return None


def fetch_sources(
    spec: DatasetSpec,
    downloads_dir: Path,
    *,
    mirror: str | None = None,
    synapse_ids: Mapping[str, str] | None = None,
    retries: int = 3,
    retry_wait_s: float = 2.0,
    progress: bool = True,
) -> Path:
    """Make every file of ``spec`` present and verified in ``downloads_dir/<key>/files``; return that folder.

    Files already there (from an earlier run, or placed by hand) are verified, not fetched again.
    """
    ids = dict(synapse_ids or {})
    files_dir = dataset_download_dir(downloads_dir, spec) / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    lock = ChecksumLock(files_dir.parent / LOCK_NAME)
    missing = [f for f in spec.files if not (files_dir / f.filename).exists()]
    token = _check_access(spec, missing, files_dir, ids)
    for file in spec.files:
        dest = files_dir / file.filename
        md5 = file.md5
        if dest.exists():
            if md5 is None and file.zenodo_record and lock.get(file.filename) is None:
                try:  # a hand-placed file: check it against the published md5 when the host is reachable
                    md5 = _zenodo_md5(file.zenodo_record, file.filename, mirror)
                except DownloadError as exc:
                    LOG.warning("%s; recording the checksum of %s without comparing", exc, dest)
            verify_file(dest, expected_md5=md5, lock=lock, source=f"file placed at {dest}")
            continue
        if file.zenodo_record and md5 is None:
            md5 = _zenodo_md5(file.zenodo_record, file.filename, mirror)
        if file.url is not None:
            http_download(apply_mirror(file.url, mirror), dest, expected_md5=md5, lock=lock, retries=retries,
                          retry_wait_s=retry_wait_s, progress=progress)
        else:
            entity = _synapse_id(file, ids)
            assert token is not None and entity is not None  # guaranteed by _check_access
            if md5 is None:
                md5 = _synapse_md5(entity, token, mirror)
            url = apply_mirror(f"{SYNAPSE_REPO}/repo/v1/entity/{entity}/file", mirror)
            http_download(url, dest, expected_md5=md5, lock=lock, private_headers={"Authorization": f"Bearer {token}"},
                          retries=retries, retry_wait_s=retry_wait_s, progress=progress)
    return files_dir


def _inside(root: Path, relative: str) -> Path:
    """``root/relative``, refusing absolute paths and ``..`` escapes."""
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
        raise DataError(f"refusing to extract unsafe archive member {relative!r}")
    return root.joinpath(*parts)


def _strip(name: str, prefix: str) -> str | None:
    """Member name without ``prefix`` (None for the prefix folder itself)."""
    if prefix and name.startswith(prefix):
        name = name[len(prefix):]
    return name.strip("/") or None


def extract_archive(archive: Path, target: Path, strip_prefix: str = "") -> None:
    """Unpack a zip or tar(.gz) into ``target``, dropping ``strip_prefix``; unsafe members are refused."""
    name = archive.name
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    rel = _strip(info.filename, strip_prefix)
                    if rel is None:
                        continue
                    out = _inside(target, rel)
                    if info.is_dir():
                        out.mkdir(parents=True, exist_ok=True)
                        continue
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        else:
            with tarfile.open(archive) as tf:
                members = []
                for member in tf.getmembers():
                    rel = _strip(member.name, strip_prefix)
                    if rel is None:
                        continue
                    _inside(target, rel)
                    member.name = rel
                    members.append(member)
                tf.extractall(target, members=members, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"cannot unpack {archive}: {exc} (expected a valid {name.rsplit('.', 1)[-1]} archive)") from exc


def _stamp_content(spec: DatasetSpec, lock: ChecksumLock) -> dict[str, object]:
    entries = lock.load()
    return {f.filename: entries.get(f.filename, {}).get("sha256") for f in spec.files}


def build_source_tree(spec: DatasetSpec, downloads_dir: Path) -> Path:
    """Unpack archives and place single files into ``downloads_dir/<key>/source``; return it.

    Built under a temporary name and renamed when complete; reused while the fetched files'
    checksums are unchanged.
    """
    base = dataset_download_dir(downloads_dir, spec)
    files_dir, final = base / "files", base / "source"
    lock = ChecksumLock(base / LOCK_NAME)
    stamp = _stamp_content(spec, lock)
    if (final / _STAMP).exists() and json.loads((final / _STAMP).read_text()) == stamp:
        return final
    with atomic_directory(final) as tmp:
        for file in spec.files:
            src = files_dir / file.filename
            if not src.exists():
                raise DataError(f"{spec.key}: expected fetched file {src}, found none (run the download first)")
            if file.is_archive:
                extract_archive(src, tmp, file.strip_prefix)
            else:
                out = _inside(tmp, file.place_at or file.filename)
                out.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(src, out)
                except OSError:
                    shutil.copy2(src, out)
        (tmp / _STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    return final
