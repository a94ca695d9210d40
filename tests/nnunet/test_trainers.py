"""The network registry and the trainer classes nnU-Net finds through ``nnUNet_extTrainer``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
from torch import nn

import mednext.networks as networks
import mednext.nnunet.trainer_classes as trainer_classes
from mednext.config_schema import ConfigValueError
from mednext.networks import NetworkSpec, get_network, lr_for, register_network
from mednext.nnunet.job_settings import TrainingJob, TrainingSettings, schema_keys
from mednext.nnunet.paths import ext_trainer_dir
from mednext.nnunet.runner import TrainAction, decide_action
from mednext.nnunet.trainers import DeepSupervisedTrainer, NoDeepSupervisionTrainer, ReproTrainer

#: The paper grid (§3.1, Tables 1-2): registry name -> nnU-Net trainer class name.
PAPER_TRAINERS = {
    "MedNeXt-S_k3": "nnUNetTrainer_MedNeXt_S_k3",
    "MedNeXt-S_k5": "nnUNetTrainer_MedNeXt_S_k5",
    "MedNeXt-B_k3": "nnUNetTrainer_MedNeXt_B_k3",
    "MedNeXt-B_k5": "nnUNetTrainer_MedNeXt_B_k5",
    "MedNeXt-M_k3": "nnUNetTrainer_MedNeXt_M_k3",
    "MedNeXt-M_k5": "nnUNetTrainer_MedNeXt_M_k5",
    "MedNeXt-L_k3": "nnUNetTrainer_MedNeXt_L_k3",
    "MedNeXt-L_k5": "nnUNetTrainer_MedNeXt_L_k5",
    "nnUNet": "nnUNetTrainer_nnUNet",
    "MedNeXt-B_k3_standard_resampling": "nnUNetTrainer_MedNeXt_B_k3_standard_resampling",
    "MedNeXt-B_k5_scratch": "nnUNetTrainer_MedNeXt_B_k5_scratch",
    "MedNeXt-B_k3_twice": "nnUNetTrainer_MedNeXt_B_k3_twice",
}


def test_paper_grid_resolves_through_nnunet_ext_trainer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("nnUNet_extTrainer", str(ext_trainer_dir()))
    assert set(PAPER_TRAINERS) <= set(networks.list_networks(["mednext", "nnunet", "ablation"]))
    for network, trainer_name in PAPER_TRAINERS.items():
        cls = recursive_find_trainer_class_by_name(trainer_name)  # nnU-Net's own finder
        assert cls.__name__ == trainer_name
        assert cls.__module__ == "mednext.nnunet.trainer_classes"
        assert issubclass(cls, nnUNetTrainer)
        assert cls.network_name == network
        expected_base = ReproTrainer if network == "nnUNet" else DeepSupervisedTrainer
        assert cls.__mro__[1] is expected_base
        assert recursive_find_trainer_class_by_name(trainer_name) is cls  # same class on every look-up
    with pytest.raises(RuntimeError, match="Could not find requested nnunet trainer"):
        recursive_find_trainer_class_by_name("nnUNetTrainer_MedNeXt_X_k9")


def test_paper_hyper_parameters_in_registry() -> None:
    for variant in "SBML":
        for kernel in (3, 5):
            spec = get_network(f"MedNeXt-{variant}_k{kernel}")
            assert (spec.optimizer, spec.lr, spec.weight_decay, spec.adam_eps) == ("adamw", 1e-3, 3e-5, 1e-4)
            assert spec.deep_supervision and spec.dim == "3d" and spec.configuration == "3d_fullres"
            assert spec.init_from == (f"MedNeXt-{variant}_k3" if kernel == 5 else None)
            assert spec.input_divisor == 16
    assert [get_network(f"MedNeXt-{v}_k3").size_class for v in "SBML"] == ["small", "medium", "large", "xlarge"]
    nnunet = get_network("nnUNet")
    assert (nnunet.builder, nnunet.optimizer, nnunet.lr) == (None, "sgd", 1e-2)
    assert get_network("MedNeXt-B_k5_scratch").init_from is None
    assert get_network("MedNeXt-B_k3_twice").init_from == "MedNeXt-B_k3"

    # Ablation "standard resampling": no residual 1x1 convs in the up/down blocks.
    standard = get_network("MedNeXt-B_k3_standard_resampling").builder(1, 3, (32, 32, 32)).state_dict()
    residual = get_network("MedNeXt-B_k3").builder(1, 3, (32, 32, 32)).state_dict()
    assert {k for k in residual if "res_conv" in k} and not {k for k in standard if "res_conv" in k}
    assert set(standard) < set(residual)
    # k5 differs from k3 only in kernel size; the twice ablation has exactly the k3 shapes.
    k5 = get_network("MedNeXt-B_k5_scratch").builder(1, 3, (32, 32, 32)).state_dict()
    twice = get_network("MedNeXt-B_k3_twice").builder(1, 3, (32, 32, 32)).state_dict()
    assert {k: v.shape for k, v in twice.items()} == {k: v.shape for k, v in residual.items()}
    assert set(k5) == set(residual) and k5["enc_block_0.0.conv1.weight"].shape[2:] == (5, 5, 5)


def test_kits19_kernel5_learning_rate_override() -> None:
    """§3.1: every MedNeXt at 1e-3 except kernel 5 on KiTS19 (1e-4: the official ``_kernel5_lr_1e_4`` trainers)."""
    k5, k3 = get_network("MedNeXt-L_k5"), get_network("MedNeXt-L_k3")
    assert lr_for(k5, "kits19") == 1e-4
    assert lr_for(get_network("MedNeXt-B_k5_scratch"), "kits19") == 1e-4
    assert lr_for(k3, "kits19") == 1e-3
    assert lr_for(k5, "btcv") == 1e-3
    assert lr_for(get_network("nnUNet"), "kits19") == 1e-2
    # the config's training.lr_overrides add to (and may replace) the registry's
    assert lr_for(k5, "btcv", {"btcv/k5": 2.5e-4}) == 2.5e-4
    assert lr_for(k5, "kits19", {"kits19/k5": 5e-4}) == 5e-4
    assert lr_for(k5, "kits19", {"btcv/k5": 2.5e-4}) == 1e-4
    with pytest.raises(ValueError, match="conflicting learning-rate overrides"):
        lr_for(k5, "kits19", {"kits19/L": 3e-4})


def test_a_dataset_whose_name_contains_kits19_is_not_kits19() -> None:
    """Overrides are looked up by registry key: a user's own dataset named after KiTS19 keeps the MedNeXt rate."""
    k5 = get_network("MedNeXt-S_k5")
    for own in ("kits19_private", "my_kits19", "kits19x"):
        assert lr_for(k5, own) == 1e-3, own
    assert lr_for(k5, None) == 1e-3  # a dataset the registry does not know


class _TinyNet(nn.Module):
    def __init__(self, in_channels: int, n_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, n_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _tiny_builder(in_channels: int, n_classes: int, patch_size: tuple[int, ...]) -> nn.Module:
    return _TinyNet(in_channels, n_classes)


def test_register_network_hook_for_baselines(monkeypatch: pytest.MonkeyPatch) -> None:
    get_network("nnUNet")  # built-ins loaded before we snapshot the registry
    monkeypatch.setattr(networks._REGISTRY, "specs", dict(networks._REGISTRY.specs))
    monkeypatch.setattr(trainer_classes, "_CACHE", {})
    monkeypatch.setenv("nnUNet_extTrainer", str(ext_trainer_dir()))
    spec = NetworkSpec(name="3D-UX-Net_test", builder=_tiny_builder, optimizer="adamw", lr=5e-4, size_class="large")
    assert register_network(spec) is spec
    assert register_network(spec) is spec  # identical re-registration is a no-op
    assert spec.trainer_name == "nnUNetTrainer_3D_UX_Net_test"
    cls = recursive_find_trainer_class_by_name(spec.trainer_name)
    assert cls.__mro__[1] is NoDeepSupervisionTrainer and cls.network_spec() is spec
    assert "3D-UX-Net_test" in networks.list_networks(["baseline"])
    with pytest.raises(ValueError, match="already registered"):
        register_network(NetworkSpec(name="3D-UX-Net_test", builder=_tiny_builder, lr=1e-4))
    with pytest.raises(ValueError, match="same trainer class"):
        register_network(NetworkSpec(name="3D_UX-Net_test", builder=_tiny_builder))
    with pytest.raises(ValueError, match="size_class"):
        register_network(NetworkSpec(name="Other", builder=_tiny_builder, size_class="huge"))
    # a plugin may register a network before the one it starts from: the check waits for look-up
    orphan = register_network(NetworkSpec(name="Orphan", builder=_tiny_builder, init_from="Missing"))
    assert orphan.init_from == "Missing"
    with pytest.raises(KeyError, match="network 'Orphan' starts from 'Missing', which is not registered"):
        get_network("Orphan")


def test_training_settings_defaults_are_the_papers_and_one_value_carries_them() -> None:
    """§3.1 / nnU-Net: 1000 epochs x 250 iterations, 50 validation batches, checkpoint every 50 epochs;
    the official protocol's knobs (fp16 AMP, no compile, the network's own gradient checkpointing)."""
    paper = TrainingSettings.paper()
    assert (paper.epochs, paper.iterations_per_epoch, paper.val_iterations, paper.save_every) == (1000, 250, 50, 50)
    assert paper.tta_mirroring and not paper.compile and paper.autocast_dtype == "float16"
    assert paper.forced_gradient_checkpointing is None and paper.checkpoint_minutes == 30
    assert set(schema_keys()) == {f.name for f in dataclasses.fields(TrainingSettings)}
    job = TrainingJob(paper.replace(epochs=3, gradient_checkpointing=False), "kits19", 2)
    assert job.settings.gradient_checkpointing == "off"  # YAML's bare off
    assert TrainingJob.from_env(job.to_env()) == job
    assert TrainingJob.from_env({}) is None
    with pytest.raises(ConfigValueError, match="iterations_per_epoch"):
        paper.replace(iterations_per_epoch=0)
    with pytest.raises(ConfigValueError, match="epochs"):
        paper.replace(epochs="ten")
    with pytest.raises(ConfigValueError, match="learning_rate"):
        TrainingSettings.from_config({"learning_rate": 1e-3})


def _plans_file(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Plans (no preprocessing) of a small synthetic CT under ``root``, with the paper's 1 mm planner."""
    from _nnunet_support import DATASET_ID, set_nnunet_env, write_small_dataset

    from mednext.nnunet.planning import plan_and_preprocess

    dirs = set_nnunet_env(monkeypatch, root)
    write_small_dataset(dirs["nnUNet_raw"])
    return plan_and_preprocess(DATASET_ID, plans_name="nnUNetPlans_jobtest", patch_size_3d=(32, 32, 32),
                               configurations=("3d_fullres",), preprocess=False, num_processes=1)


def test_the_trainer_reads_its_job_from_the_one_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trainer built under ``$MEDNEXT_TRAINING_JOB`` takes schedule, lr (by dataset key) and knobs from it."""
    from mednext.nnunet.recipe import trainer_for_plans

    plans = _plans_file(tmp_path, monkeypatch)
    settings = TrainingSettings.paper().replace(epochs=7, iterations_per_epoch=3, val_iterations=2, save_every=5,
                                               lr_overrides={"kits19/k5": 5e-4}, tta_mirroring=False)
    trainer = trainer_for_plans(plans, "MedNeXt-S_k5", job=TrainingJob(settings, "kits19"))
    assert (trainer.num_epochs, trainer.num_iterations_per_epoch, trainer.num_val_iterations_per_epoch) == (7, 3, 2)
    assert trainer.save_every == 5 and trainer.initial_lr == 5e-4
    trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    assert trainer.inference_allowed_mirroring_axes is None
    own = trainer_for_plans(plans, "MedNeXt-S_k5", job=TrainingJob(settings, "kits19_private"))
    assert own.initial_lr == 1e-3


def test_rerun_decision_from_fold_folder(tmp_path: Path) -> None:
    assert decide_action(tmp_path) is TrainAction.FRESH
    (tmp_path / "checkpoint_best.pth").touch()
    assert decide_action(tmp_path) is TrainAction.CONTINUE
    (tmp_path / "checkpoint_latest.pth").touch()
    assert decide_action(tmp_path) is TrainAction.CONTINUE
    (tmp_path / "checkpoint_final.pth").touch()
    assert decide_action(tmp_path) is TrainAction.VALIDATE
    (tmp_path / "validation").mkdir()
    (tmp_path / "validation" / "summary.json").write_text("{}")
    assert decide_action(tmp_path) is TrainAction.DONE


def test_every_trainer_of_the_paper_config_resolves_baselines_included(monkeypatch: pytest.MonkeyPatch) -> None:
    """config/paper.yaml's 15 networks and 3 ablations, as the workflow names them, through nnU-Net's finder."""
    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "paper.yaml").read_text())
    names = [*config["networks"], *config["ablations"]["networks"]]
    assert len(names) == 18 and {"UNETR", "SwinUNETR", "nnFormer", "3D-UX-Net", "TransBTS", "TransUNet"} <= set(names)
    monkeypatch.setenv("nnUNet_extTrainer", str(ext_trainer_dir()))
    for name in names:
        spec = get_network(name)
        cls = recursive_find_trainer_class_by_name(spec.trainer_name)
        assert cls.__name__ == spec.trainer_name and cls.network_name == name
        expected = (ReproTrainer if name == "nnUNet"
                    else DeepSupervisedTrainer if spec.deep_supervision else NoDeepSupervisionTrainer)
        assert cls.__mro__[1] is expected


def test_progress_png_on_the_cpu_is_redrawn_after_the_first_and_last_epoch_and_every_30_s() -> None:
    from mednext.nnunet.resumable import progress_plot_due

    def drawn(epoch_seconds: float, epochs: int) -> list[int]:
        last, epochs_drawn = -float("inf"), []
        for epoch in range(epochs):
            now = (epoch + 1) * epoch_seconds
            if progress_plot_due(epoch, epochs, now - last):
                epochs_drawn.append(epoch)
                last = now
        return epochs_drawn

    assert drawn(150.0, 10) == list(range(10))  # epochs longer than 30 s: nnU-Net's every epoch
    assert drawn(6.0, 16) == [0, 5, 10, 15]  # the CPU demo: the first, every 30 s, and the last
    assert drawn(6.0, 1) == [0]  # a one-epoch run still leaves its plot
