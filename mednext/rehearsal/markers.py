"""Per-case marks written by a measured process: wall time and exact peak memory of each case.

A stage that handles cases one after another (conversion, evaluation), or in a pool of worker
processes (nnU-Net's fingerprint and preprocessing), brackets every case with :func:`case_span`.
At the start the process's peak-RSS counter is reset (Linux: ``5`` into ``/proc/self/clear_refs``
resets ``VmHWM``); at the end the counter is read, so each case's peak is the kernel's own figure,
with nothing missed between samples. One JSON line per case is appended to the file named by
:data:`ENV_MARKERS` (one ``write`` of a short line: appends from several workers do not interleave).
Without that variable nothing is written and the span costs nothing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: File the marks of a measured run are appended to (set by the measuring parent for its child).
ENV_MARKERS = "MEDNEXT_REHEARSAL_MARKERS"
KIB = 1024


def _status_mb(field: str, pid: int | str = "self") -> float | None:
    """A memory field of ``/proc/<pid>/status`` (e.g. ``VmHWM``) in MB, or None where /proc lacks it."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * KIB / 1e6
    except OSError:
        return None
    return None


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """The process's peak resident set size (``VmHWM``) in MB, or None where /proc does not have it."""
    return _status_mb("VmHWM", pid)


def current_rss_mb() -> float | None:
    """This process's resident set size (``VmRSS``) in MB, or None where /proc does not have it."""
    return _status_mb("VmRSS")


def reset_peak_rss() -> bool:
    """Reset this process's ``VmHWM`` to its current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def write_mark(record: dict[str, object], path: str | None = None) -> None:
    """Append one JSON line to the marker file (``$MEDNEXT_REHEARSAL_MARKERS`` unless ``path``)."""
    target = path or os.environ.get(ENV_MARKERS)
    if not target:
        return
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@contextmanager
def case_span(stage: str, case: str, **extra: object) -> Iterator[None]:
    """Mark one case of ``stage``: its wall time and the process's peak RSS while it ran."""
    if not os.environ.get(ENV_MARKERS):
        yield
        return
    rss_at_start = current_rss_mb()
    exact = reset_peak_rss()
    start = time.time()
    yield
    end = time.time()
    write_mark({"kind": "case", "stage": stage, "case": case, "pid": os.getpid(), "start": start, "end": end,
                "wall_s": end - start, "peak_mb": peak_rss_mb(), "rss_at_start_mb": rss_at_start, "exact_peak": exact,
                **extra})


@contextmanager
def phase_span(stage: str, phase: str) -> Iterator[None]:
    """Mark one phase of a stage run by the main process (e.g. fingerprint, planning, preprocessing 2d)."""
    start = time.time()
    yield
    end = time.time()
    write_mark({"kind": "phase", "stage": stage, "phase": phase, "pid": os.getpid(), "start": start, "end": end,
                "wall_s": end - start})


def read_marks(path: str | Path) -> list[dict[str, object]]:
    """Every mark in ``path`` (none if it does not exist)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
