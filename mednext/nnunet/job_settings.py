"""What a training job receives: one typed value built once from the validated config, read once by the trainer.

The config's ``training:`` section (defaults in ``workflow/schemas/config.schema.yaml`` only) becomes a
:class:`TrainingSettings`; with the run's dataset key and CPU count it makes a :class:`TrainingJob`,
which travels to the ``nnUNetv2_train`` process as one JSON environment variable (nnU-Net builds the
trainer itself, so the environment is the only way in) and is parsed once in the trainer's constructor.
Adding a knob is one field here plus its schema entry; the workflow, the ``train`` command, provenance
and the trainer pass the whole object on.

Kept apart from :mod:`mednext.nnunet.trainers` (which imports nnU-Net, ~4 s) so that the ``train``
command and the workflow can build a job without importing nnU-Net themselves.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mednext.config_schema import ConfigValueError, section_schema, validate_with_defaults

#: The one environment variable that carries a :class:`TrainingJob` (JSON) to the training process.
ENV_TRAINING_JOB = "MEDNEXT_TRAINING_JOB"
#: Signals that make a training save ``checkpoint_latest`` and exit: SLURM's time-limit SIGTERM and
#: the SIGUSR1 a ``--signal`` option would send.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGUSR1)
#: What the trainer's log says after a stop signal (``<SIGNAL>: saved checkpoint_latest ...`` mid-run,
#: ``<SIGNAL> after the last epoch: ...`` at the end); ``mednext-repro status`` reads these words.
SIGNAL_SAVED_LATEST = "saved checkpoint_latest"
SIGNAL_AFTER_LAST_EPOCH = "after the last epoch"


@dataclass(frozen=True)
class TrainingSettings:
    """The config's ``training:`` section after the schema's defaults; one field per schema property.

    The meaning and default of each field is in the schema; the paper's values (§3.1: nnU-Net's
    1000 epochs x 250 iterations, 50 validation batches, mirroring in the final validation) are the
    defaults, and the speed knobs default to the official protocol.
    """

    epochs: int
    iterations_per_epoch: int
    val_iterations: int
    save_every: int
    tta_mirroring: bool
    checkpoint_minutes: float
    gradient_checkpointing: str
    autocast_dtype: str
    channels_last: bool
    compile: bool
    lr_overrides: Mapping[str, float]
    save_initial_weights: bool
    divergence_patience: int
    rescue_epoch: int | None
    retry_diverged: bool

    @classmethod
    def from_config(cls, training: Mapping[str, Any] | None, source: str = "config") -> TrainingSettings:
        """Validate ``training`` against the schema, fill its defaults and build the settings.

        YAML reads a bare ``on``/``off`` as a boolean; ``gradient_checkpointing`` keeps the words.

        Raises:
            ConfigValueError: naming ``source`` and the offending keys.
        """
        values = validate_with_defaults(training or {}, source, section="training")
        checkpointing = values.get("gradient_checkpointing")
        if isinstance(checkpointing, bool):
            values["gradient_checkpointing"] = "on" if checkpointing else "off"
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(fields - set(values))
        if missing:  # a field whose schema entry has no default
            raise ConfigValueError(f"{source} (training:): no value and no schema default for {missing}")
        return cls(**{name: values[name] for name in fields})

    @classmethod
    def paper(cls) -> TrainingSettings:
        """The schema's defaults: the paper's protocol."""
        return cls.from_config({}, "the schema's defaults")

    def replace(self, **changes: Any) -> TrainingSettings:
        """A copy with ``changes``, validated like a config section (e.g. from ``train --set``)."""
        return type(self).from_config({**self.as_dict(), **changes}, "settings")

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (provenance, the job variable)."""
        values = dataclasses.asdict(self)
        values["lr_overrides"] = dict(self.lr_overrides)
        return values

    @property
    def forced_gradient_checkpointing(self) -> bool | None:
        """None for ``auto`` (the network's default), else the forced value."""
        return {"auto": None, "on": True, "off": False}[self.gradient_checkpointing]


def schema_keys() -> list[str]:
    """The ``training:`` keys of the schema, which must be exactly :class:`TrainingSettings`' fields."""
    return list(section_schema("training")["properties"])


@dataclass(frozen=True)
class TrainingJob:
    """One training job: its settings, the dataset's registry key and the CPUs it holds.

    Attributes:
        settings: the config's training settings.
        dataset: registry key of the dataset (learning-rate overrides are looked up by it); None
            for a dataset the registry does not know.
        cpu_threads: torch's intra-op threads on the CPU (the CPUs the job holds); None leaves
            nnU-Net's choice (every core).
        gpu_rehearsal: what a GPU rehearsal measured for the network (device, its memory, the margin,
            the runs with and without gradient checkpointing), from the workflow's calibration; with
            ``gradient_checkpointing: auto`` the trainer decides from it
            (:func:`mednext.nnunet.checkpointing_choice.choice_for_job`). None: not rehearsed.
    """

    settings: TrainingSettings
    dataset: str | None = None
    cpu_threads: int | None = None
    gpu_rehearsal: Mapping[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps({"settings": self.settings.as_dict(), "dataset": self.dataset, "cpu_threads": self.cpu_threads,
                           "gpu_rehearsal": None if self.gpu_rehearsal is None else dict(self.gpu_rehearsal)},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = f"${ENV_TRAINING_JOB}") -> TrainingJob:
        try:
            data = json.loads(text)
            settings = data["settings"]
        except (ValueError, TypeError, KeyError) as error:
            raise ConfigValueError(f"{source}: not a training job ({error!r}): {text[:200]!r}") from None
        return cls(TrainingSettings.from_config(settings, source), data.get("dataset"), data.get("cpu_threads"),
                   data.get("gpu_rehearsal"))

    def to_env(self) -> dict[str, str]:
        return {ENV_TRAINING_JOB: self.to_json()}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TrainingJob | None:
        """The job in ``$MEDNEXT_TRAINING_JOB``, or None when the trainer runs outside ``mednext-repro train``."""
        raw = (os.environ if environ is None else environ).get(ENV_TRAINING_JOB)
        return cls.from_json(raw) if raw else None
