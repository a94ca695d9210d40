"""Benchmark: ``mednext-repro status`` on a generated tree of the paper grid's 330 fold folders.

The tree is ``config/paper.yaml``'s grid in the middle of its weeks: trainings evaluated, finished,
running, interrupted by a time limit, failed, diverged, queued behind Snakemake's markers, waiting
for an UpKern parent, not started. Every started fold has nnU-Net-format training logs (1000 epochs
of BTCV-sized pseudo-Dice lines for a finished one, ~0.5 MB), ``provenance.json`` and empty
checkpoint files (``status`` never opens a checkpoint, it only reads their times). Target: the whole
grid in under 5 s.

Times printed: building the status in-process (first and best of 3 passes, page cache warm after the
first), and the whole command in a fresh process (imports included, the table, status.csv and the picture).

Usage: ``python benchmarks/bench_status.py [--root DIR] [--keep]``
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mednext.nnunet.divergence import Divergence, write_marker
from mednext.workflow.config_source import load_workflow_config
from mednext.workflow.grid import all_runs, check_config
from mednext.workflow.layout import Layout

REPO = Path(__file__).resolve().parents[1]
PAPER_CONFIG = REPO / "config" / "paper.yaml"
STATE_SHARES = (("evaluated", 0.45), ("finished", 0.05), ("running", 0.08), ("interrupted", 0.04), ("failed", 0.02),
                ("diverged", 0.01), ("queued", 0.05))
CLASSES = 13  # BTCV's organs: the longest pseudo-Dice lines of the paper's datasets but AMOS22's 15


def _log_text(start: datetime, first: int, last: int, epoch_s: float, rng: random.Random, finished: bool) -> str:
    """nnU-Net's epoch lines (``nnUNetTrainer.on_train_epoch_start`` / ``on_epoch_end``) for epochs first..last."""
    lines, clock = [], start
    for epoch in range(first, last + 1):
        stamp = f"{clock:%Y-%m-%d %H:%M:%S.%f}"
        lines += [f"{stamp}:  ", f"{stamp}: Epoch {epoch} ", f"{stamp}: Current learning rate: 0.00099 "]
        clock += timedelta(seconds=epoch_s)
        stamp = f"{clock:%Y-%m-%d %H:%M:%S.%f}"
        dice = ", ".join(f"np.float32({min(1.0, 0.8 * epoch / 300 + rng.random() * 0.1):.4f})" for _ in range(CLASSES))
        lines += [f"{stamp}: train_loss -0.7123 ", f"{stamp}: val_loss -0.6543 ", f"{stamp}: Pseudo dice [{dice}] ",
                  f"{stamp}: Epoch time: {epoch_s:.2f} s "]
    if finished:
        lines.append(f"{clock:%Y-%m-%d %H:%M:%S.%f}: Training done. ")
    return "\n".join(lines) + "\n"


def _provenance(started: datetime, wall_s: float | None, status: str) -> dict:
    iso = started.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"kind": "training", "runs": [{"action": "fresh", "status": status, "started": iso, "wall_s": wall_s}]}


def generate_tree(root: Path, config: dict, seed: int = 0) -> dict[str, int]:
    """Write the fold folders, metrics and Snakemake markers of a half-done paper grid under ``root``."""
    rng = random.Random(seed)
    layout = Layout.from_config(config)
    epochs = int(config["training"]["epochs"])
    now = datetime.now()
    states: dict = {}
    for run in all_runs(config):  # sorted: a kernel-3 parent comes before its kernel-5 child of the same size
        draw, state = rng.random(), "not_started"
        for name, share in STATE_SHARES:
            if draw < share:
                state = name
                break
            draw -= share
        parent = run.parent()
        if parent is not None and states.get(parent) not in ("evaluated", "finished"):
            state = "not_started"  # waits for its parent
        states[run] = state
    counts: dict[str, int] = {}
    for run, state in states.items():
        counts[state] = counts.get(state, 0) + 1
        checkpoint = root / layout.checkpoint(run)
        fold = checkpoint.parent
        if state == "queued":
            marker = root / ".snakemake" / "incomplete"
            marker.mkdir(parents=True, exist_ok=True)
            (marker / base64.urlsafe_b64encode(layout.checkpoint(run).encode()).decode()).write_text('{"external_jobid": null}')
            continue
        if state == "not_started":
            continue
        fold.mkdir(parents=True, exist_ok=True)
        epoch_s = rng.uniform(30, 700)
        done = epochs if state in ("evaluated", "finished") else rng.randrange(5, epochs)
        started = now - timedelta(seconds=done * epoch_s + (0 if state == "running" else rng.uniform(3600, 86400)))
        (fold / f"training_log_{started.year}_{started.month}_{started.day}_{started.hour:02d}_{started.minute:02d}_"
                 f"{started.second:02d}.txt").write_text(_log_text(started, 0, done - 1, epoch_s, rng, done == epochs))
        for name in ("checkpoint_best.pth", "checkpoint_latest.pth"):
            (fold / name).write_bytes(b"")
        wall = None if state == "running" else done * epoch_s
        status = {"running": "running", "failed": "failed", "interrupted": "running", "diverged": "failed"}.get(state, "ok")
        (fold / "provenance.json").write_text(json.dumps(_provenance(started, wall, status)))
        if state in ("evaluated", "finished"):
            (fold / "checkpoint_final.pth").write_bytes(b"")
        if state == "evaluated":
            metrics = root / layout.metrics(run)
            metrics.parent.mkdir(parents=True, exist_ok=True)
            metrics.write_text("case,class,dsc\n")
        if state == "diverged":
            write_marker(fold, Divergence(epoch=done, iteration=12, consecutive=50,
                                          reason="training loss non-finite (nan) for 50 consecutive iterations"))
        if state == "failed":
            log = root / layout.train_log(run)
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text("Traceback (most recent call last):\ntorch.OutOfMemoryError: CUDA out of memory.\n")
        if state != "running":  # the files' times are when the training last wrote them
            ended = (started + timedelta(seconds=done * epoch_s)).timestamp()
            for path in fold.iterdir():
                os.utime(path, (ended, ended))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="where to generate the tree (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated tree")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="bench_status_"))
    config = load_workflow_config(PAPER_CONFIG)
    check_config(config, str(PAPER_CONFIG))
    t0 = time.perf_counter()
    counts = generate_tree(root, config)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    print(f"generated {sum(counts.values())} trainings under {root} in {time.perf_counter() - t0:.1f} s "
          f"({size / 1e6:.0f} MB; {', '.join(f'{n} {s}' for s, n in sorted(counts.items()))})")

    from mednext.status.grid_status import collect_status

    passes = []
    for _ in range(3):
        t0 = time.perf_counter()
        status = collect_status(config, root, queue=None, gpus=32)
        passes.append(time.perf_counter() - t0)
    print(f"status of {len(status.rows)} fold folders in-process: first {passes[0]:.2f} s, best of 3 {min(passes):.2f} s; "
          f"ETA on 32 GPUs {status.eta_hours / 24:.1f} days")
    command = [sys.executable, "-m", "mednext", "status", "--config", str(PAPER_CONFIG), "--workdir", str(root),
               "--no-squeue", "--gpus", "32", "--csv", str(root / "status.csv"), "--picture", str(root / "grid_status.png")]
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    print(f"mednext-repro status, whole command in a new process (imports, table, CSV, picture): {wall:.2f} s")
    print("\n".join(done.stdout.strip().splitlines()[-6:]))
    if args.keep or args.root:
        print(f"tree kept in {root}")
    else:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
