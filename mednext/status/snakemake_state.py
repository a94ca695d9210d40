"""What Snakemake leaves on disk about its jobs: incomplete-output markers and the rules' log files.

Snakemake marks every output of a job it starts (or submits to SLURM) as incomplete, one file per
output under ``<workdir>/.snakemake/incomplete/``, named by the urlsafe base64 of the output path
(split into ``@``-prefixed folders when longer than a file name may be) and holding the cluster job
id (``docs/sources.md#snakemake-markers``). The marker goes when the job ends, so a marker
names a job that is queued, running, or was killed together with Snakemake.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from pathlib import Path

INCOMPLETE_DIR = Path(".snakemake") / "incomplete"
#: Bytes read from the end of a rule's log when looking for its error.
LOG_TAIL_BYTES = 64 * 1024
#: Lines that state why a job failed: a Python exception, the kernel's OOM kill, SLURM's own errors.
_ERROR_LINE = re.compile(
    r"^(?:[\w.]*(?:Error|Exception|Interrupt)\b.*|.*\b(?:CANCELLED|oom[-_]kill|Out Of Memory|DUE TO TIME LIMIT)\b.*"
    r"|(?:mednext-repro|slurmstepd): error:.*|Killed\s*$)",
    re.MULTILINE | re.IGNORECASE,
)


def _decode_marker(relative: Path) -> str | None:
    """The output path a marker file stands for (``None`` for a file that is not a marker)."""
    chunks = [part[1:] if part.startswith("@") else part for part in relative.parts]
    try:
        return base64.urlsafe_b64decode("".join(chunks).encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def incomplete_outputs(workdir: Path) -> dict[Path, str | None]:
    """Every output Snakemake has marked incomplete in ``workdir``, resolved, with its cluster job id."""
    root = workdir / INCOMPLETE_DIR
    found: dict[Path, str | None] = {}
    if not root.is_dir():
        return found
    for folder, _, files in os.walk(root):
        for name in files:
            marker = Path(folder) / name
            output = _decode_marker(marker.relative_to(root))
            if output is None:
                continue  # e.g. Snakemake's "migration_underway"
            try:
                job_id = json.loads(marker.read_text() or "{}").get("external_jobid")
            except (OSError, ValueError):
                job_id = None
            path = Path(output)
            found[(path if path.is_absolute() else workdir / path).resolve()] = None if job_id is None else str(job_id)
    return found


def read_tail(path: Path, size: int = LOG_TAIL_BYTES) -> str:
    """The last ``size`` bytes of a text file (empty when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - size))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def last_error_line(path: Path) -> str | None:
    """The last line of a job's log that states an error (see :data:`_ERROR_LINE`), stripped."""
    matches = _ERROR_LINE.findall(read_tail(path))
    return matches[-1].strip() if matches else None
