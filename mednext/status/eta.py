"""When the grid will be done: its remaining trainings scheduled on N GPUs in the workflow's order.

Each training that has not finished needs its remaining epochs x its epoch time; a kernel-5 UpKern
training starts only when its kernel-3 parent has finished (§2.3), and the workflow starts parents
first (``mednext.workflow.grid.scheduling_priority``). Trainings already running keep their GPU; free
GPUs take ready trainings, parents first, then the longest (a list schedule; evaluation jobs run on
CPUs and are not counted).
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PendingTraining:
    """A training still to (finish) run: its hours left, the training it waits for, whether it runs now."""

    key: Hashable
    hours: float
    parent: Hashable | None = None
    running: bool = False


def schedule_hours(trainings: Sequence[PendingTraining], gpus: int) -> float:
    """Hours until the last of ``trainings`` ends on ``gpus`` GPUs (0 for none).

    A ``parent`` that is not among ``trainings`` has finished already. Running trainings all keep
    their GPU, even if there are more of them than ``gpus``.

    Raises:
        ValueError: ``gpus`` < 1, or a training waits for a parent that can never finish (a cycle).
    """
    if gpus < 1:
        raise ValueError(f"--gpus must be at least 1, got {gpus}")
    by_key = {t.key: t for t in trainings}
    children: dict[Hashable, list[PendingTraining]] = {}
    for training in trainings:
        if training.parent in by_key:
            children.setdefault(training.parent, []).append(training)
    is_parent = set(children)

    def priority(training: PendingTraining) -> tuple[int, float, str]:
        return (0 if training.key in is_parent else 1, -training.hours, repr(training.key))

    ready = [(priority(t), t.key) for t in trainings if not t.running and t.parent not in by_key]
    heapq.heapify(ready)
    finishing: list[tuple[float, str, Hashable]] = [(t.hours, repr(t.key), t.key) for t in trainings if t.running]
    heapq.heapify(finishing)
    clock, done = 0.0, 0
    while ready or finishing:
        while len(finishing) < gpus and ready:
            _, key = heapq.heappop(ready)
            heapq.heappush(finishing, (clock + by_key[key].hours, repr(key), key))
        if not finishing:
            break
        clock, _, key = heapq.heappop(finishing)
        done += 1
        for child in children.get(key, []):
            heapq.heappush(ready, (priority(child), child.key))
    if done != len(trainings):
        raise ValueError("some trainings wait for parents that never finish")
    return clock
