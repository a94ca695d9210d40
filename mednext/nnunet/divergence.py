"""The divergence guard: a training whose loss stays NaN or infinite stops, and says so in its fold folder.

nnU-Net v2 trains on through non-finite losses (its ``train_step`` has no check), and MedNeXt has been
reported to produce NaN losses under nnU-Net v2 (``docs/sources.md#nan-divergence``); such a run would
burn its whole GPU budget. A single non-finite loss is not divergence: with float16 autocast, nnU-Net's
GradScaler skips the optimiser step of an iteration whose gradients overflow and lowers its scale,
and the next iterations recover. The guard therefore stops a run only after
``patience`` consecutive non-finite losses, writes :data:`DIVERGED_MARKER` into the fold folder and
exits with :data:`DIVERGED_EXIT_CODE`; the next attempt meets the marker and refuses to start until
the user removes it or asks for a retry (``training.retry_diverged``).

This module is free of torch and nnU-Net so that ``status`` and the runner can read markers cheaply.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mednext.atomic import atomic_write_text

#: The marker a diverged training leaves in its fold folder.
DIVERGED_MARKER = "diverged.json"
#: Where the diverged training's last state is saved, beside (never over) the last good ``checkpoint_latest``.
DIVERGED_CHECKPOINT = "checkpoint_diverged.pth"
#: Exit status of a training stopped by the guard, and of an attempt refused because of the marker.
#: Distinct from Python's 1, argparse's 2 and the 128 + signal of a time-limit stop.
DIVERGED_EXIT_CODE = 3
#: Consecutive non-finite losses that stop a training when the config does not say otherwise.
DEFAULT_PATIENCE = 50


class DivergenceMarkerError(ValueError):
    """A divergence marker that cannot be read; the message names the file."""


class DivergedRunError(RuntimeError):
    """The next attempt of a diverged training, refused: the message quotes the marker and says how to go on."""

    def __init__(self, marker: Path, divergence: Divergence) -> None:
        self.marker, self.divergence = marker, divergence
        super().__init__(
            f"refusing to start: the divergence guard stopped this training: {divergence.describe()} ({marker}); "
            f"remove the marker, or set training.retry_diverged: true, for the next attempt to resume from "
            f"checkpoint_latest (the diverged state is in {DIVERGED_CHECKPOINT})")


@dataclass(frozen=True)
class Divergence:
    """Why and where a training was stopped: the epoch and iteration (0-based, within the epoch) of
    the last of ``consecutive`` non-finite losses, and the losses seen."""

    epoch: int
    iteration: int
    consecutive: int
    reason: str
    losses: tuple[str, ...] = ()
    stopped_at: str = field(default_factory=lambda: datetime.now(timezone.utc).replace(microsecond=0)
                            .isoformat().replace("+00:00", "Z"))
    checkpoint: str | None = None

    def describe(self) -> str:
        """One line for logs and ``status``."""
        return f"{self.reason} (epoch {self.epoch}, iteration {self.iteration}; stopped {self.stopped_at})"

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "losses": list(self.losses)}, indent=2) + "\n"


class NonFiniteLossGuard:
    """Counts consecutive non-finite training losses; :meth:`observe` returns a :class:`Divergence`
    when ``patience`` of them have been seen in a row (a finite loss resets the count)."""

    def __init__(self, patience: int = DEFAULT_PATIENCE) -> None:
        if patience < 1:
            raise ValueError(f"the divergence patience must be a positive number of iterations, got {patience}")
        self.patience = patience
        self.consecutive = 0
        self._recent: list[str] = []

    def observe(self, loss: float, epoch: int, iteration: int) -> Divergence | None:
        """Record one iteration's loss; the divergence when this one completes ``patience`` in a row."""
        if math.isfinite(loss):
            self.consecutive = 0
            self._recent.clear()
            return None
        self.consecutive += 1
        self._recent = (self._recent + [repr(float(loss))])[-5:]
        if self.consecutive < self.patience:
            return None
        kinds = " / ".join(sorted(set(self._recent)))
        return Divergence(epoch=epoch, iteration=iteration, consecutive=self.consecutive, losses=tuple(self._recent),
                          reason=f"training loss non-finite ({kinds}) for {self.consecutive} consecutive iterations")


def marker_path(fold_dir: str | Path) -> Path:
    return Path(fold_dir) / DIVERGED_MARKER


def write_marker(fold_dir: str | Path, divergence: Divergence) -> Path:
    """Write the marker atomically (a reader never sees half of it)."""
    return atomic_write_text(marker_path(fold_dir), divergence.to_json())


def read_marker(fold_dir: str | Path) -> Divergence | None:
    """The divergence recorded in ``fold_dir`` (``None`` without a marker)."""
    path = marker_path(fold_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise DivergenceMarkerError(f"{path}: not a readable divergence marker ({error})") from None
    try:
        return Divergence(**{**data, "losses": tuple(data.get("losses", ()))})
    except TypeError as error:
        raise DivergenceMarkerError(f"{path}: not a divergence marker ({error})") from None


def read_marker_or_unreadable(fold_dir: str | Path) -> Divergence | None:
    """Like :func:`read_marker`, but an unreadable marker is a divergence too, its reason the read error
    (epoch and iteration -1): a run that left a broken marker still counts as stopped, and says why."""
    try:
        return read_marker(fold_dir)
    except DivergenceMarkerError as error:
        return Divergence(epoch=-1, iteration=-1, consecutive=0, reason=str(error))


def set_marker_aside(fold_dir: str | Path) -> Path:
    """Rename the marker to ``diverged.json.retried-<UTC time>`` (kept, for the record) and return the new path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = marker_path(fold_dir)
    return path.rename(path.with_name(f"{path.name}.retried-{stamp}"))
