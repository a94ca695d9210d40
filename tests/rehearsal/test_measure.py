"""The process-tree measurement: the peak of a multi-process stage is the sum over its workers, each
worker's own peak is kept, and a per-case mark catches a peak the sampler cannot see."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from mednext.rehearsal.measure import run_measured

MB = 1e6
#: Two workers, each holding ALLOCATION_MB at the same time (they wait for each other on a barrier).
POOL_SCRIPT = textwrap.dedent("""
    import multiprocessing as mp, sys, time
    from mednext.rehearsal.markers import case_span

    def work(case, size_mb, barrier):
        with case_span("stage", case):
            block = bytearray(int(size_mb * 1e6))
            block[::4096] = b"x" * len(block[::4096])  # touch every page: resident
            barrier.wait()
            time.sleep(2.0)  # both blocks resident together, sampled many times
            barrier.wait()

    if __name__ == "__main__":
        size = float(sys.argv[1])
        ctx = mp.get_context("spawn")
        barrier = ctx.Barrier(2)
        workers = [ctx.Process(target=work, args=(f"case{i}", size, barrier)) for i in range(2)]
        for w in workers: w.start()
        for w in workers: w.join()
""")
BURST_SCRIPT = textwrap.dedent("""
    import sys, time
    from mednext.rehearsal.markers import case_span
    with case_span("stage", "burst"):
        block = bytearray(int(float(sys.argv[1]) * 1e6))
        block[::4096] = b"x" * len(block[::4096])
        del block
    time.sleep(0.3)
""")
ALLOCATION_MB = 300


def _run(tmp_path: Path, script: str, *args: str, interval_s: float = 0.05):
    path = tmp_path / "stage.py"
    path.write_text(script)
    return run_measured([sys.executable, str(path), *args], markers=tmp_path / "marks.jsonl", interval_s=interval_s,
                        log=tmp_path / "log.txt", timeout_s=120)


def test_a_pool_stage_peaks_at_the_sum_of_its_workers(tmp_path: Path) -> None:
    run = _run(tmp_path, POOL_SCRIPT, str(ALLOCATION_MB))
    assert run.returncode == 0, (tmp_path / "log.txt").read_text()
    workers = run.memory.worker_peaks(run.root_pid)
    big = sorted(mb for mb in workers.values() if mb > ALLOCATION_MB)
    assert len(big) == 2  # both workers held their block
    assert all(mb < 2 * ALLOCATION_MB for mb in big)  # each alone holds one block, not two
    # the tree held both blocks at once: the summed peak is above one worker's peak by about one block
    assert run.memory.peak_sum_mb >= 2 * ALLOCATION_MB
    assert run.memory.peak_sum_mb > max(big) + 0.8 * ALLOCATION_MB
    assert run.n_workers == 2 and run.worker_peak_mb >= ALLOCATION_MB
    assert sorted(c.case for c in run.cases) == ["case0", "case1"]
    assert all(c.peak_mb >= ALLOCATION_MB and c.pid != run.root_pid for c in run.cases)


def test_a_case_mark_records_a_peak_between_samples(tmp_path: Path) -> None:
    # one sample every 5 s: the burst (well under a second) happens between samples
    run = _run(tmp_path, BURST_SCRIPT, "400", interval_s=5.0)
    assert run.returncode == 0, (tmp_path / "log.txt").read_text()
    (mark,) = run.cases
    assert mark.case == "burst" and mark.peak_mb >= 400  # the kernel's peak counter, reset at the case's start
    assert mark.rss_at_start_mb is not None and mark.rss_at_start_mb < 400


def test_a_command_that_runs_too_long_is_killed_with_its_tree(tmp_path: Path) -> None:
    path = tmp_path / "sleep.py"
    path.write_text("import time\ntime.sleep(60)\n")
    run = run_measured([sys.executable, str(path)], timeout_s=1.0)
    assert run.returncode == -9 and run.wall_s < 30
