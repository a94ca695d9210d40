"""What an nnU-Net v2 fold folder's ``training_log_*.txt`` files say about its training, read as text.

nnU-Net writes one log per process start (``nnUNetTrainer.__init__``); each epoch adds
``Epoch N``, the per-class ``Pseudo dice [...]`` of its validation batches and ``Epoch time: S s``
(``nnUNetTrainer.on_epoch_end``). The pseudo-Dice nnU-Net tracks (and picks ``checkpoint_best`` by)
is an exponential moving average of the per-epoch foreground mean, ``ema = 0.9 ema + 0.1 mean``
(``nnUNetLogger.log``); it is rebuilt here from the logged per-class values, so that no checkpoint
(up to 700 MB for MedNeXt-L with its AdamW state) has to be loaded.

Format and formula: ``docs/sources.md#nnunet-training-log``. Only the tail of long logs is read: an epoch
older than :data:`EMA_EPOCHS` weighs less than 0.9**100 = 3e-5 in the average, below the 4 decimals
nnU-Net logs.
"""

from __future__ import annotations

import math
import os
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: nnU-Net's moving-average weight of the previous value (``nnUNetLogger.log``).
EMA_DECAY = 0.9
#: Epochs of history enough for the moving average to 3e-5 (0.9**100).
EMA_EPOCHS = 100
#: Bytes first read from the end of a log (an epoch logs 0.3-0.6 kB: about 100-200 epochs); more when too few.
TAIL_BYTES = 64 * 1024
#: The measured epoch duration is the median of this many latest epoch times.
EPOCH_TIME_SAMPLES = 20

_STAMP = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?: "
_EPOCH = re.compile(_STAMP + r"Epoch (\d+)\s*$", re.MULTILINE)
_PSEUDO_DICE = re.compile(_STAMP + r"Pseudo dice \[(.*)\]\s*$", re.MULTILINE)
_EPOCH_TIME = re.compile(_STAMP + r"Epoch time: ([0-9.eE+-]+) s\s*$", re.MULTILINE)
_NUMPY_SCALAR = re.compile(r"np\.\w+\(([^()]*)\)")  # numpy >= 2 prints np.float32(0.5) inside lists
_LOG_NAME = re.compile(r"training_log_(\d+)_(\d+)_(\d+)_(\d+)_(\d+)_(\d+)\.txt$")


@dataclass(frozen=True)
class TrainingLogSummary:
    """The facts :func:`summarize_training_logs` reads from a fold folder's logs.

    ``last_epoch`` is the index of the last epoch that began, ``epochs_finished`` the number of epochs
    whose end was logged (epochs redone after a resume count once).
    """

    logs: tuple[Path, ...]
    last_epoch: int | None
    epochs_finished: int
    ema_pseudo_dice: float | None
    pseudo_dice: tuple[float, ...] | None
    epoch_seconds: float | None
    validation_dice: float | None
    last_lines: tuple[str, ...]
    last_activity: float | None  # the newest log's modification time (seconds since the epoch)


def training_logs(fold_dir: Path) -> list[Path]:
    """The fold's nnU-Net training logs, oldest first (by the start time in the name, then modification time)."""
    with os.scandir(fold_dir) as entries:
        return order_training_logs((Path(e.path), e.stat().st_mtime) for e in entries if e.is_file())


def order_training_logs(files: Iterable[tuple[Path, float]]) -> list[Path]:
    """Of ``(path, modification time)`` pairs, nnU-Net's training logs, oldest first (by the start time in
    the name, then modification time): nnU-Net's names do not zero-pad month and day."""
    found = []
    for path, mtime in files:
        match = _LOG_NAME.match(path.name)
        if match:
            found.append((tuple(int(g) for g in match.groups()), mtime, path))
    return [path for _, _, path in sorted(found)]


def _read_tail(path: Path, size: int = TAIL_BYTES) -> tuple[str, bool]:
    """The last ``size`` bytes of ``path`` as text, and whether that is the whole file."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        length = handle.tell()
        handle.seek(max(0, length - size))
        data = handle.read()
    text = data.decode("utf-8", errors="replace")
    if length > size:
        text = text.split("\n", 1)[1] if "\n" in text else ""  # drop the cut first line
    return text, length <= size


def parse_pseudo_dice(inner: str) -> tuple[float, ...]:
    """The per-class values of a ``Pseudo dice [...]`` line (numpy 1 and 2 spellings, ``nan``)."""
    parts = _NUMPY_SCALAR.findall(inner) if "np." in inner else inner.split(",")
    return tuple(float(p) for p in parts if p.strip())


def foreground_mean(values: tuple[float, ...]) -> float:
    """nnU-Net's ``mean_fg_dice``: the mean over classes, NaN (a class absent from every validation batch) left out."""
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def moving_average(means_by_epoch: dict[int, float]) -> float | None:
    """nnU-Net's EMA over the epochs in ``means_by_epoch`` in order: the first value, then 0.9 ema + 0.1 mean."""
    ema: float | None = None
    for epoch in sorted(means_by_epoch):
        value = means_by_epoch[epoch]
        ema = value if ema is None else EMA_DECAY * ema + (1 - EMA_DECAY) * value
    return ema


def _epoch_blocks(text: str) -> list[tuple[int, str]]:
    """``(epoch, text of that epoch)`` for every ``Epoch N`` line of ``text``."""
    starts = list(_EPOCH.finditer(text))
    return [(int(m.group(1)), text[m.end(): starts[i + 1].start() if i + 1 < len(starts) else len(text)])
            for i, m in enumerate(starts)]


def _finished_blocks(path: Path, needed: int, resumed_at: float) -> tuple[str, list[tuple[int, str]], bool]:
    """The tail of ``path`` holding at least ``needed`` finished epochs before ``resumed_at`` (or the whole
    file), its epoch blocks, and whether it is the whole file."""
    size = TAIL_BYTES
    while True:
        text, whole = _read_tail(path, size)
        blocks = [(epoch, block) for epoch, block in _epoch_blocks(text) if epoch < resumed_at]
        if whole or sum("Epoch time:" in block for _, block in blocks) >= needed:
            return text, blocks, whole
        size *= 4


def summarize_training_logs(fold_dir: Path, logs: list[Path] | None = None) -> TrainingLogSummary | None:
    """Read the fold's logs newest first until :data:`EMA_EPOCHS` finished epochs are known; ``None`` without a log."""
    logs = training_logs(fold_dir) if logs is None else logs
    if not logs:
        return None
    means: dict[int, float] = {}
    finished: set[int] = set()
    epoch_times: list[float] = []
    last_epoch: int | None = None
    last_dice: tuple[float, ...] | None = None
    newest_text = ""
    resumed_at = math.inf  # a newer log restarted here: an older log's later epochs were rolled back
    for index, path in enumerate(reversed(logs)):
        text, blocks, whole = _finished_blocks(path, EMA_EPOCHS - len(finished), resumed_at)
        if index == 0:
            newest_text = text
        if last_epoch is None and blocks:
            last_epoch = blocks[-1][0]
        for epoch, block in reversed(blocks):
            seconds = _EPOCH_TIME.search(block)
            if seconds is None:
                continue  # begun, not finished
            finished.add(epoch)
            if len(epoch_times) < EPOCH_TIME_SAMPLES:  # the latest ones: a resume may run on another GPU
                epoch_times.append(float(seconds.group(1)))
            dice = _PSEUDO_DICE.search(block)
            if dice:
                values = parse_pseudo_dice(dice.group(1))
                last_dice = values if last_dice is None else last_dice
                means[epoch] = foreground_mean(values)
            if len(finished) >= EMA_EPOCHS:
                break  # an older epoch weighs < 0.9**100 in the average
        if len(finished) >= EMA_EPOCHS or not whole:
            break
        if blocks:
            resumed_at = blocks[0][0]
    ema = moving_average(means)
    tail_lines = tuple(line for line in newest_text[-8192:].splitlines()[-40:] if line.strip())
    validation = re.findall(_STAMP + r"Mean Validation Dice:\s+([0-9.eE+-]+|nan)", newest_text, flags=re.MULTILINE)
    return TrainingLogSummary(
        logs=tuple(logs),
        last_epoch=last_epoch,
        epochs_finished=(max(finished) + 1) if finished else 0,
        ema_pseudo_dice=None if ema is None or math.isnan(ema) else ema,
        pseudo_dice=last_dice,
        epoch_seconds=statistics.median(epoch_times) if epoch_times else None,
        validation_dice=float(validation[-1]) if validation else None,
        last_lines=tail_lines,
        last_activity=logs[-1].stat().st_mtime,
    )

