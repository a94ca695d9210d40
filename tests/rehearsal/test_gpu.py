"""The GPU stages: on a machine without CUDA every network says "not measured: no GPU"; with the device
calls of a GPU mocked (a fake backend on the CPU), the same code times training with and without
checkpointing and a sliding-window prediction, and reads the device's peaks."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from mednext.rehearsal import gpu
from mednext.rehearsal.extrapolate import NO_GPU
from mednext.workflow.config_source import load_workflow_config
from tests.workflow.conftest import REPO


class FakeBackend:
    """The CUDA calls, answered on the CPU with planted peaks; counts what was asked."""

    device = torch.device("cpu")
    autocast_device = "cpu"

    def __init__(self) -> None:
        self.resets = self.syncs = 0
        self.peaks = iter([(11_000.0, 12_000.0), (29_000.0, 31_000.0)])  # (allocated, reserved) per training run
        self.reserved = 0.0

    def name(self) -> str:
        return "Fake GPU 48GB"

    def total_memory_mb(self) -> float:
        return 48_000.0

    def synchronize(self) -> None:
        self.syncs += 1

    def reset_peaks(self) -> None:
        self.resets += 1

    def max_allocated_mb(self) -> float:  # read once per training run, then the reserved peak
        allocated, self.reserved = next(self.peaks)
        return allocated

    def max_reserved_mb(self) -> float:
        return self.reserved


def tiny_config(network: str) -> dict:
    config = load_workflow_config(REPO / "config" / "demo.yaml")
    config = copy.deepcopy(config)
    config.update(networks=[network], ablations={"datasets": [], "networks": []})
    config["planning"].update(patch_3d=[32, 32, 32], batch_3d=1)
    config["training"]["tta_mirroring"] = False
    return config


def test_without_a_gpu_nothing_is_measured(tmp_path: Path) -> None:
    figures = gpu.gpu_stages(tiny_config("MedNeXt-M_k3"), "cpu", 1, tmp_path)
    assert figures.device is None and figures.networks == {} and figures.missing_reason == NO_GPU
    if not torch.cuda.is_available():
        asked = gpu.gpu_stages(tiny_config("MedNeXt-M_k3"), "cuda", 1, tmp_path)
        assert asked.missing_reason.startswith(NO_GPU) and asked.networks == {}


def test_a_network_that_checkpoints_runs_with_and_without_it_on_a_mocked_gpu(tmp_path: Path, monkeypatch) -> None:
    # MedNeXt-S stands in for M/L (same block checkpointing switch, a fraction of the CPU time)
    monkeypatch.setattr(gpu, "network_checkpoints_by_default", lambda network: True)
    backend = FakeBackend()
    figures = gpu.gpu_stages(tiny_config("MedNeXt-S_k3"), "cuda", 1, tmp_path, backend=backend, warmup=0)
    assert figures.device == "Fake GPU 48GB" and figures.memory_mb == 48_000.0
    network = figures.networks["MedNeXt-S_k3"]
    on, off = network.run(True), network.run(False)
    # the peaks read from the device after each run, in order: with the recipe's checkpointing, then without
    assert (on.max_allocated_mb, on.reserved_mb) == (11_000.0, 12_000.0)
    assert (off.max_allocated_mb, off.reserved_mb) == (29_000.0, 31_000.0)
    assert on.s_per_iteration > 0 and off.s_per_validation_iteration > 0
    assert network.predict_s is not None and network.predict_s > 0 and network.dataset == "synthetic"
    assert backend.resets >= 3 and backend.syncs >= 4


def test_a_network_that_does_not_checkpoint_runs_once(tmp_path: Path) -> None:
    figures = gpu.gpu_stages(tiny_config("MedNeXt-S_k3"), "cuda", 1, tmp_path, backend=FakeBackend(), warmup=0)
    assert [r.gradient_checkpointing for r in figures.networks["MedNeXt-S_k3"].runs] == [False]


def test_checkpointing_is_switched_on_the_built_network() -> None:
    model = gpu.get_network("MedNeXt-L_k3").build(1, 3, (32, 32, 32))
    assert model.outside_block_checkpointing  # the official default for L
    assert gpu.set_checkpointing(model, False) and not model.outside_block_checkpointing
