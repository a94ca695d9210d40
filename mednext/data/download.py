"""Resumable HTTP downloads with checksum verification and a checksum lock file (standard library only).

A transfer writes ``<name>.part``; an interrupted transfer resumes from the bytes already there with
an HTTP ``Range`` request; the file is checked (the host's published MD5 where there is one, else
the SHA-256 recorded in ``checksums.lock.json`` on the first download) and only then renamed to its
final name. ``urllib`` is used so that tests can point every URL at a loopback server via the
mirror setting (``MEDNEXT_DATA_MIRROR``).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from mednext.atomic import atomic_write_text
from mednext.data.errors import ChecksumError, DownloadError

LOG = logging.getLogger(__name__)

#: Replace scheme and host of every source URL with this base (e.g. a local mirror or a test server).
MIRROR_ENV = "MEDNEXT_DATA_MIRROR"
LOCK_NAME = "checksums.lock.json"
_CHUNK = 1 << 20
_USER_AGENT = "mednext-repro-data/0.1 (+urllib)"


def apply_mirror(url: str, mirror: str | None = None) -> str:
    """``url`` with scheme and host replaced by ``mirror`` (argument, else ``$MEDNEXT_DATA_MIRROR``).

    A mirror with a path (``http://host/base``) prefixes the original path.
    """
    base = mirror if mirror is not None else os.environ.get(MIRROR_ENV, "")
    if not base:
        return url
    target, original = urllib.parse.urlsplit(base), urllib.parse.urlsplit(url)
    path = target.path.rstrip("/") + original.path
    return urllib.parse.urlunsplit((target.scheme, target.netloc, path, original.query, ""))


@dataclass(frozen=True)
class Digests:
    """Size and hashes of one file."""

    size: int
    md5: str
    sha256: str


def file_digests(path: Path) -> Digests:
    """MD5 and SHA-256 of ``path`` in one pass."""
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            md5.update(chunk)
            sha.update(chunk)
            size += len(chunk)
    return Digests(size=size, md5=md5.hexdigest(), sha256=sha.hexdigest())


class ChecksumLock:
    """``checksums.lock.json``: SHA-256 and size recorded on the first download of each file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, dict[str, object]]:
        if not self.path.exists():
            return {}
        try:
            return json.loads(self.path.read_text())
        except json.JSONDecodeError as exc:
            raise ChecksumError(f"checksum lock {self.path} is not valid JSON ({exc}); fix or delete it") from exc

    def get(self, filename: str) -> dict[str, object] | None:
        return self.load().get(filename)

    def record(self, filename: str, digests: Digests, source: str) -> None:
        """Add or replace the entry for ``filename`` (written via a temporary file and rename)."""
        entries = self.load()
        entries[filename] = {"size": digests.size, "md5": digests.md5, "sha256": digests.sha256, "source": source}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(dict(sorted(entries.items())), indent=2) + "\n")


def verify_file(path: Path, *, expected_md5: str | None, lock: ChecksumLock | None, source: str) -> Digests:
    """Check ``path`` against the published MD5 and the lock entry; record it in the lock if new.

    Raises :class:`ChecksumError` naming the file, the expected and the found digest.
    """
    digests = file_digests(path)
    if expected_md5 is not None and digests.md5 != expected_md5.lower():
        raise ChecksumError(
            f"checksum mismatch for {path.name}: expected md5 {expected_md5.lower()} (published by {source}), "
            f"found {digests.md5} ({digests.size} bytes) in {path}"
        )
    entry = lock.get(path.name.removesuffix(".part")) if lock is not None else None
    if entry is not None and entry.get("sha256") != digests.sha256:
        raise ChecksumError(
            f"checksum mismatch for {path.name}: expected sha256 {entry.get('sha256')} (recorded in {lock.path} on "
            f"first download), found {digests.sha256} ({digests.size} bytes) in {path}"
        )
    if lock is not None and entry is None:
        lock.record(path.name.removesuffix(".part"), digests, source)
    return digests


def _open(url: str, headers: Mapping[str, str], private_headers: Mapping[str, str], timeout: float):
    """Open ``url``; ``private_headers`` (credentials) are not forwarded on redirects."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, **headers})
    for key, value in private_headers.items():
        request.add_unredirected_header(key, value)
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) only, URLs from the registry


def fetch_json(url: str, *, private_headers: Mapping[str, str] | None = None, timeout: float = 60.0) -> object:
    """GET ``url`` and parse the JSON body."""
    try:
        with _open(url, {"Accept": "application/json"}, private_headers or {}, timeout) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"GET {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
        raise DownloadError(f"GET {url} failed: {exc}") from exc


def _stream_once(
    url: str, part: Path, headers: Mapping[str, str], private_headers: Mapping[str, str], timeout: float, progress: bool
) -> tuple[int, int | None]:
    """One transfer attempt into ``part`` (resuming from its size); returns (bytes on disk, expected total)."""
    offset = part.stat().st_size if part.exists() else 0
    request_headers = dict(headers)
    if offset:
        request_headers["Range"] = f"bytes={offset}-"
    try:
        response = _open(url, request_headers, private_headers, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the partial file is longer than the remote one: start over
            part.unlink()
            return _stream_once(url, part, headers, private_headers, timeout, progress)
        raise
    with response:
        if offset and response.status != 206:
            offset = 0  # server ignored the range: restart from scratch
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        mode = "ab" if offset else "wb"
        with open(part, mode) as sink, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name.removesuffix(".part"), disable=not progress, leave=False,
        ) as bar:
            try:
                while chunk := response.read(_CHUNK):
                    sink.write(chunk)
                    bar.update(len(chunk))
            except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
                LOG.warning("transfer of %s interrupted: %s", part.name, exc)
    return part.stat().st_size, total


def http_download(
    url: str,
    dest: Path,
    *,
    expected_md5: str | None = None,
    lock: ChecksumLock | None = None,
    headers: Mapping[str, str] | None = None,
    private_headers: Mapping[str, str] | None = None,
    retries: int = 3,
    retry_wait_s: float = 2.0,
    timeout: float = 60.0,
    progress: bool = True,
) -> Digests:
    """Download ``url`` to ``dest``: resumable, verified, renamed into place only when whole.

    ``private_headers`` (e.g. a bearer token) are sent to ``url`` only, never to a redirect target,
    and never logged. On a failed checksum the data is deleted; on an interrupted transfer it is
    kept as ``dest.part`` so the next call resumes.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    size, total, last_error = 0, None, ""
    for attempt in range(1, retries + 2):
        try:
            size, total = _stream_once(url, part, headers or {}, private_headers or {}, timeout, progress)
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
            last_error = f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        else:
            if total is None or size == total:
                break
            if size > total:
                part.unlink()
                last_error = f"received {size} bytes, more than the announced {total}"
            else:
                last_error = f"truncated: received {size} of {total} bytes"
        if attempt <= retries:
            LOG.info("retrying %s (attempt %d of %d): %s", dest.name, attempt + 1, retries + 1, last_error)
            time.sleep(retry_wait_s * attempt)
    else:
        kept = f"; partial data kept in {part}, run again to resume" if part.exists() else ""
        raise DownloadError(f"download of {url} incomplete after {retries + 1} attempts ({last_error}){kept}")
    try:
        digests = verify_file(part, expected_md5=expected_md5, lock=lock, source=url)
    except ChecksumError as exc:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{exc}; the corrupted download was deleted") from exc
    os.replace(part, dest)
    return digests
