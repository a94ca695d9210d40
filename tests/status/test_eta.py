"""The grid's remaining time: a list schedule on N GPUs that starts UpKern parents first (hand-worked cases)."""

from __future__ import annotations

import pytest

from mednext.status.eta import PendingTraining, schedule_hours


def test_parents_go_first_so_their_children_can_start() -> None:
    # two GPUs; a 10 h k3 parent with a 10 h k5 child, and three 6 h trainings:
    # GPU1 k3 0-10, k5 10-20; GPU2 a 0-6, b 6-12, c 12-18 -> 20 h
    trainings = [PendingTraining("k3", 10, None), PendingTraining("k5", 10, "k3"),
                 PendingTraining("a", 6), PendingTraining("b", 6), PendingTraining("c", 6)]
    assert schedule_hours(trainings, gpus=2) == 20
    assert schedule_hours(trainings, gpus=1) == 38  # everything in a row
    assert schedule_hours(trainings, gpus=5) == 20  # the chain is the critical path


def test_a_short_parent_starts_before_longer_trainings_then_longest_first() -> None:
    # GPU1 p 0-2 (a parent, so before both 8 h jobs), GPU2 long 0-8; at 2 the child (4 h) and long2 (8 h)
    # are ready: long2 2-10 first, the child 8-12 -> 12 h
    trainings = [PendingTraining("p", 2), PendingTraining("child", 4, "p"), PendingTraining("long", 8),
                 PendingTraining("long2", 8)]
    assert schedule_hours(trainings, gpus=2) == 12


def test_running_trainings_keep_their_gpus() -> None:
    trainings = [PendingTraining("r1", 3, running=True), PendingTraining("r2", 5, running=True),
                 PendingTraining("r3", 1, running=True), PendingTraining("next", 4)]
    # 3 running on 2 GPUs: all three run; "next" starts when the running count drops below 2 (t=3)
    assert schedule_hours(trainings, gpus=2) == 7
    assert schedule_hours([], gpus=4) == 0


def test_a_parent_that_is_not_pending_has_finished() -> None:
    assert schedule_hours([PendingTraining("k5", 3, parent="k3-done")], gpus=1) == 3


def test_bad_gpu_count() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        schedule_hours([PendingTraining("a", 1)], gpus=0)
