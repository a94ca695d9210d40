"""One training iteration of each baseline through its nnU-Net trainer, on CPU.

The synthetic dataset is planned once (1 mm, nnU-Net's own planner via mednext.nnunet.planning)
and preprocessed for 3d_fullres and 2d; each test then trains its baseline's generated trainer
(``nnUNetTrainer_<name>``, registered from baselines.registry.BASELINES) for one
epoch of one iteration and one validation batch, with the configuration's patch set to the
network's smallest legal patch (TransBTS: 128^3, the only size it has; marked slow).
"""

from __future__ import annotations

import json
import math
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import baselines
from mednext.data.synthetic import write_synthetic_dataset
from mednext.nnunet.checkpoints import network_weights
from mednext.nnunet.job_settings import TrainingJob, TrainingSettings
from mednext.nnunet.planning import plan_and_preprocess
from mednext.nnunet.trainer_classes import trainer_for_network
from mednext.nnunet.trainers import NoDeepSupervisionTrainer

DATASET_ID = 994
PLANS = "nnUNetPlans_baselines_test"
FAST_ENV = {
    "nnUNet_def_n_proc": "1",
    "nnUNet_n_proc_DA": "0",
    "nnUNet_compile": "0",
    # one epoch of one iteration and one validation batch, as `mednext-repro train` would hand it over
    **TrainingJob(TrainingSettings.paper().replace(epochs=1, iterations_per_epoch=1, val_iterations=1, save_every=1)).to_env(),
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict, dict]]:
    """(plans, dataset.json) of the synthetic dataset, preprocessed for 3d_fullres and 2d."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("nnunet_baselines")
        for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
            (root / var).mkdir()
            mp.setenv(var, str(root / var))
        for var, value in FAST_ENV.items():
            mp.setenv(var, value)
        raw = write_synthetic_dataset(root / "nnUNet_raw", dataset_id=DATASET_ID, n_cases=2, shape=(12, 40, 40))
        plans_file = plan_and_preprocess(
            DATASET_ID, plans_name=PLANS, patch_size_3d=(32, 32, 32), patch_size_2d=(32, 32),
            batch_size_3d=1, batch_size_2d=2, configurations=("3d_fullres", "2d"), num_processes=1,
        )
        yield json.loads(Path(plans_file).read_text()), json.loads((raw / "dataset.json").read_text())


def _train_one_iteration(name: str, plans: dict, dataset_json: dict) -> None:
    spec = baselines.get(name)
    configuration = spec.configuration
    plans = json.loads(json.dumps(plans))
    plans["configurations"][configuration]["patch_size"] = list(spec.smallest_patch_size)
    plans["continue_training"] = False  # nnU-Net's entry point sets this key before building a trainer
    trainer_cls = trainer_for_network(name)
    assert trainer_cls.__name__ == "nnUNetTrainer_" + name.replace("-", "_")
    assert issubclass(trainer_cls, NoDeepSupervisionTrainer)

    trainer = trainer_cls(plans, configuration, "all", dataset_json, device=torch.device("cpu"))
    trainer.initialize()
    net = trainer.network
    assert type(net).__module__.startswith("baselines.")
    assert not trainer.enable_deep_supervision
    optimizer = trainer.optimizer
    assert type(optimizer).__name__.lower() == spec.optimizer
    group = optimizer.param_groups[0]
    assert group["lr"] == spec.lr and group["weight_decay"] == 3e-5
    if spec.optimizer == "adamw":
        assert group["eps"] == 1e-4
    else:
        assert group["momentum"] == 0.99 and group["nesterov"]
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}

    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    try:
        trainer.run_training()
        _check_one_step(name, trainer, before, handlers)
    finally:
        # Paper-size baselines with their optimiser state: checkpoint_best + checkpoint_final are up to
        # 2.5 GB per network (TransUNet), 8.4 GB for all seven; kept, they filled a CI machine's disk.
        shutil.rmtree(trainer.output_folder, ignore_errors=True)


def _check_one_step(name: str, trainer: NoDeepSupervisionTrainer, before: dict, handlers: dict) -> None:
    """One finite training loss, the stop handlers restored, and some weight moved by the step."""
    # The trainer's stop handlers end with its loop: left installed, they make forked children ignore
    # SIGTERM, and a later multiprocessing.Pool in this process hangs in terminate() (seen in CI).
    assert {s: signal.getsignal(s) for s in handlers} == handlers

    losses = trainer.logger.get_value("train_losses", step=None)
    assert len(losses) == 1 and math.isfinite(losses[0])
    checkpoint = Path(trainer.output_folder) / "checkpoint_final.pth"
    saved = network_weights(checkpoint)
    assert set(saved) == set(before)
    moved = [k for k, v in saved.items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert moved, f"{name}: one optimiser step changed no weight"


@pytest.mark.parametrize("name", [n for n in baselines.names() if n != "TransBTS"])
def test_one_training_iteration_through_nnunet_trainer(name: str, prepared: tuple[dict, dict]) -> None:
    _train_one_iteration(name, *prepared)


@pytest.mark.slow
def test_transbts_one_training_iteration_at_128(prepared: tuple[dict, dict]) -> None:
    _train_one_iteration("TransBTS", *prepared)
