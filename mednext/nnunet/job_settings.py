"""What a training job receives through its environment: schedule, knobs, and checkpoint file names.

Kept apart from :mod:`mednext.nnunet.trainers` (which imports nnU-Net, ~4 s) so that the ``train``
command and the workflow can build a job's environment without importing nnU-Net themselves.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import ClassVar

ENV_EPOCHS = "MEDNEXT_EPOCHS"
ENV_ITERS = "MEDNEXT_ITERS"
ENV_VAL_ITERS = "MEDNEXT_VAL_ITERS"
ENV_SAVE_EVERY = "MEDNEXT_SAVE_EVERY"
#: When truthy, a fresh run saves its weights right after initialisation (UpKern included).
ENV_SAVE_INITIAL = "MEDNEXT_SAVE_INITIAL_WEIGHTS"
#: When falsy (``0``), inference and the final validation run without mirroring test-time
#: augmentation (8x fewer forward passes, for the CPU demo); the paper's validation mirrors (§3.1).
ENV_MIRRORING = "MEDNEXT_TTA_MIRRORING"
#: Minutes of wall time between extra ``checkpoint_latest`` saves (issue 11; default 30).
ENV_CHECKPOINT_MINUTES = "MEDNEXT_CHECKPOINT_MINUTES"
#: ``auto`` (the network's default: MedNeXt on for M and L, as the official code), ``on`` or ``off``.
ENV_GRADIENT_CHECKPOINTING = "MEDNEXT_GRADIENT_CHECKPOINTING"
#: CUDA autocast dtype: ``float16`` (nnU-Net's default, with GradScaler) or ``bfloat16`` (no scaler).
ENV_AUTOCAST_DTYPE = "MEDNEXT_AUTOCAST_DTYPE"
#: When truthy, the network's weights use ``channels_last_3d`` on CUDA (cuDNN then picks that layout).
ENV_CHANNELS_LAST = "MEDNEXT_CHANNELS_LAST"
#: Intra-op threads of a CPU training: the CPUs its job holds (nnU-Net's CPU entry point takes them all).
ENV_CPU_THREADS = "MEDNEXT_CPU_THREADS"
#: Signals that make a training save ``checkpoint_latest`` and exit: SLURM's time-limit SIGTERM and
#: the SIGUSR1 a ``--signal`` option would send.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGUSR1)
LATEST_CHECKPOINT = "checkpoint_latest.pth"
#: The previous ``checkpoint_latest``, kept when a new one is written (issue 11, item 3).
PREVIOUS_LATEST_CHECKPOINT = "checkpoint_latest.prev.pth"
INITIAL_WEIGHTS_FILE = "initial_weights.pth"
UPKERN_REPORT_FILE = "upkern.json"


@dataclass(frozen=True)
class Schedule:
    """Epochs, iterations per epoch, validation iterations and checkpoint period.

    Paper default (§3.1, nnU-Net's): 1000 epochs x 250 iterations, 50 validation batches,
    ``checkpoint_latest`` every 50 epochs. The ``MEDNEXT_*`` variables shrink it for demos/tests.
    """

    epochs: int = 1000
    iters: int = 250
    val_iters: int = 50
    save_every: int = 50

    _ENV: ClassVar[dict[str, str]] = {
        "epochs": ENV_EPOCHS,
        "iters": ENV_ITERS,
        "val_iters": ENV_VAL_ITERS,
        "save_every": ENV_SAVE_EVERY,
    }

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Schedule:
        """The default schedule with any ``MEDNEXT_*`` variable set in ``environ`` applied."""
        environ = dict(os.environ) if environ is None else environ
        values = {}
        for attribute, var in cls._ENV.items():
            raw = environ.get(var)
            if raw is None or raw == "":
                continue
            try:
                value = int(raw)
            except ValueError:
                value = 0
            if value < 1:
                raise ValueError(f"${var} must be a positive integer, found {raw!r}")
            values[attribute] = value
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The variables that make :meth:`from_env` return this schedule."""
        return {var: str(getattr(self, attribute)) for attribute, var in self._ENV.items()}
