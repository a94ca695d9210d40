"""Wall time and peak memory of a command and its whole process tree, sampled with psutil.

A stage runs as its own process (the same command a DAG job runs, or a probe calling the same
functions), started by :func:`run_measured`. A thread walks the process tree with psutil every
``interval_s`` (the usual way to watch one) and records two things:

- the peak of the **sum** over the tree: what a job with worker processes needs from SLURM. Summed
  is each process's proportional set size (PSS, ``/proc/<pid>/smaps_rollup``): a page shared by n
  processes counts 1/n in each, so the sum counts every page once, as SLURM's cgroup does. (Summing
  RSS would count a forked child's inherited pages twice: a planning run that forks short-lived
  helpers read 5.8 GB in RSS for a job that held under 2 GB.) Where PSS cannot be read, RSS is summed.
- the peak of each **process alone**: its largest RSS or its kernel peak counter (``VmHWM``), what one
  worker needs.

Sampling can miss a peak shorter than the interval; per-case peaks come exactly from the kernel
instead (:mod:`mednext.rehearsal.markers`). The default interval is half a second: reading the PSS
of a 10 GB process walks its page tables, and at 0.2 s the sampler took a third of one of this
machine's two cores from the stage it measured.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from mednext.rehearsal.markers import ENV_MARKERS, peak_rss_mb, read_marks

MB = 1e6


@dataclass
class TreeMemory:
    """What the sampler saw: peak of the summed RSS, and each process's peak (MB), by pid."""

    peak_sum_mb: float = 0.0
    process_peak_mb: dict[int, float] = field(default_factory=dict)
    process_names: dict[int, str] = field(default_factory=dict)
    samples: int = 0
    max_processes: int = 0

    def worker_peaks(self, root_pid: int) -> dict[int, float]:
        """Peak RSS of every process but the root (the workers it started)."""
        return {pid: mb for pid, mb in self.process_peak_mb.items() if pid != root_pid}


def proportional_set_size_mb(pid: int) -> float | None:
    """A process's PSS in MB from ``/proc/<pid>/smaps_rollup``; None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024 / MB
    except OSError:
        return None
    return None


class TreeSampler:
    """Samples the RSS of ``root_pid`` and its descendants on a background thread until :meth:`stop`."""

    def __init__(self, root_pid: int, interval_s: float = 0.5) -> None:
        self.root_pid = root_pid
        self.interval_s = interval_s
        self.memory = TreeMemory()
        self._stop = threading.Event()
        self._known: dict[int, psutil.Process] = {}
        self._thread = threading.Thread(target=self._run, name=f"tree-sampler-{root_pid}", daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> TreeMemory:
        self._stop.set()
        self._thread.join()
        return self.memory

    def _processes(self) -> list[psutil.Process]:
        try:
            root = self._known.get(self.root_pid) or psutil.Process(self.root_pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        for process in tree:  # keep one Process object per pid (psutil caches its identity)
            self._known.setdefault(process.pid, process)
        return [self._known[p.pid] for p in tree]

    def sample(self) -> None:
        """Take one sample (also called by the thread)."""
        total = 0.0
        processes = self._processes()
        for process in processes:
            try:
                rss = process.memory_info().rss / MB
                hwm = peak_rss_mb(process.pid)  # the kernel's own peak while the process is alive
                pss = proportional_set_size_mb(process.pid)
                if process.pid not in self.memory.process_names:
                    self.memory.process_names[process.pid] = " ".join(process.cmdline()[:4])
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            total += rss if pss is None else pss
            best = max(rss, hwm or 0.0)
            if best > self.memory.process_peak_mb.get(process.pid, 0.0):
                self.memory.process_peak_mb[process.pid] = best
        self.memory.peak_sum_mb = max(self.memory.peak_sum_mb, total)
        self.memory.samples += 1
        self.memory.max_processes = max(self.memory.max_processes, len(processes))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)


@dataclass(frozen=True)
class CaseMark:
    """One case of a stage as its process marked it (:func:`mednext.rehearsal.markers.case_span`)."""

    stage: str
    case: str
    pid: int
    wall_s: float
    peak_mb: float | None
    detail: str = ""
    rss_at_start_mb: float | None = None


@dataclass(frozen=True)
class MeasuredRun:
    """A measured command: exit code, wall time, tree memory, and the marks its processes wrote."""

    command: tuple[str, ...]
    returncode: int
    wall_s: float
    root_pid: int
    memory: TreeMemory
    cases: tuple[CaseMark, ...]
    phases: dict[str, float]
    log: Path | None

    @property
    def main_peak_mb(self) -> float:
        """The root process's own peak RSS."""
        return self.memory.process_peak_mb.get(self.root_pid, 0.0)

    @property
    def worker_peak_mb(self) -> float:
        """The largest peak of one worker process (one that ran a marked case): sampled or marked (exact)."""
        workers = {c.pid for c in self.cases if c.pid != self.root_pid}
        sampled = max((mb for pid, mb in self.memory.worker_peaks(self.root_pid).items() if pid in workers), default=0.0)
        marked = max((c.peak_mb or 0.0 for c in self.cases if c.pid != self.root_pid), default=0.0)
        return max(sampled, marked)

    @property
    def n_workers(self) -> int:
        """Worker processes below the root that ran marked cases: the most in one pool (a stage and detail,
        e.g. preprocessing one configuration)."""
        pools: dict[tuple[str, str], set[int]] = {}
        for mark in self.cases:
            if mark.pid != self.root_pid:
                pools.setdefault((mark.stage, mark.detail), set()).add(mark.pid)
        return max((len(pids) for pids in pools.values()), default=0)


def run_measured(command: Sequence[str], *, env: Mapping[str, str] | None = None, log: Path | None = None,
                 markers: Path | None = None, interval_s: float = 0.5, cwd: Path | None = None,
                 timeout_s: float | None = None) -> MeasuredRun:
    """Run ``command`` with its process tree sampled; its marks (if it writes any) go to ``markers``.

    stdout and stderr go to ``log`` (or are discarded). A command still running after ``timeout_s``
    is killed with its tree and reported with return code -9.
    """
    environment = dict(os.environ if env is None else env)
    if markers is not None:
        markers.parent.mkdir(parents=True, exist_ok=True)
        markers.unlink(missing_ok=True)
        environment[ENV_MARKERS] = str(markers)
    sink = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - closed below
    try:
        start = time.perf_counter()
        process = subprocess.Popen(list(command), env=environment, stdout=sink, stderr=subprocess.STDOUT, cwd=cwd)
        with TreeSampler(process.pid, interval_s) as sampler:
            try:
                returncode = process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_tree(process.pid)
                returncode = -9
        wall = time.perf_counter() - start
    finally:
        if log is not None:
            sink.close()
    marks = read_marks(markers) if markers is not None else []
    cases = tuple(CaseMark(str(m["stage"]), str(m["case"]), int(m["pid"]), float(m["wall_s"]),
                           None if m.get("peak_mb") is None else float(m["peak_mb"]), str(m.get("detail", "")),
                           None if m.get("rss_at_start_mb") is None else float(m["rss_at_start_mb"]))
                  for m in marks if m.get("kind") == "case")
    for m in marks:  # a process's own final peak, written as it exits
        if m.get("kind") == "process" and m.get("peak_mb") is not None:
            pid = int(m["pid"])
            sampler.memory.process_peak_mb[pid] = max(sampler.memory.process_peak_mb.get(pid, 0.0), float(m["peak_mb"]))
    phases: dict[str, float] = {}
    for m in marks:
        if m.get("kind") == "phase":
            phases[str(m["phase"])] = phases.get(str(m["phase"]), 0.0) + float(m["wall_s"])
    return MeasuredRun(tuple(command), returncode, wall, process.pid, sampler.memory, cases, phases, log)


def _kill_tree(pid: int) -> None:
    try:
        root = psutil.Process(pid)
        for process in [*root.children(recursive=True), root]:
            process.kill()
    except psutil.NoSuchProcess:
        pass
