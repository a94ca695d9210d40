"""Which of the workflow's jobs SLURM holds right now, from one ``squeue`` call.

The SLURM executor of Snakemake names a job by the run's id and puts
``rule_<rule>_wildcards_<values joined by _>`` into the job's comment
(``docs/sources.md#snakemake-markers``), so a training's comment is derived from its checkpoint
wildcards: dataset folder, trainer, configuration, fold.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass

log = logging.getLogger(__name__)

SQUEUE_TIMEOUT_S = 20
#: squeue's states of a job that waits for resources or has been requeued.
PENDING_STATES = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESV_DEL_HOLD"})


@dataclass(frozen=True)
class QueuedJob:
    """One line of ``squeue``: SLURM job id, state (``PENDING``, ``RUNNING`` ...) and comment."""

    job_id: str
    state: str
    comment: str

    @property
    def pending(self) -> bool:
        return self.state in PENDING_STATES


def train_job_comment(dataset_folder: str, trainer: str, configuration: str, fold: int) -> str:
    """The comment Snakemake's SLURM executor gives the ``train`` job of these wildcards."""
    return f"rule_train_wildcards_{dataset_folder}_{trainer}_{configuration}_{fold}"


def parse_squeue(text: str) -> list[QueuedJob]:
    """Lines of ``squeue --noheader --format=%i|%T|%k``."""
    jobs = []
    for line in text.splitlines():
        parts = line.strip().split("|", 2)
        if len(parts) == 3 and parts[0]:
            jobs.append(QueuedJob(parts[0].strip(), parts[1].strip().upper(), parts[2].strip()))
    return jobs


def query_squeue(executable: str = "squeue") -> list[QueuedJob] | None:
    """This user's jobs as ``squeue`` lists them; ``None`` (with a warning) when squeue is missing or fails."""
    path = shutil.which(executable)
    if path is None:
        return None
    try:
        done = subprocess.run([path, "--me", "--noheader", "--format=%i|%T|%k"], capture_output=True, text=True,
                              timeout=SQUEUE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        log.warning("squeue did not answer (%s); states come from the files only", error)
        return None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        log.warning("squeue failed (%s); states come from the files only", reason)
        return None
    return parse_squeue(done.stdout)
