"""GPU stages of a rehearsal: training iterations per network and one sliding-window prediction.

Per network of the config (on the dataset with the most labels it trains on, as the output layer is
the largest there): a few training iterations at the paper's patch and batch (§3.1: 128³ batch 2,
512² batch 14 in 2D) with the recipe's settings: the network's optimiser, nnU-Net's mixed precision
(``autocast`` with ``training.autocast_dtype`` and a GradScaler for float16), gradient clipping at 12,
deep supervision with a cross-entropy term per output, and the network's gradient checkpointing; a
network that checkpoints by default (MedNeXt M and L) runs again with it off. Recorded: seconds per
training and per validation iteration after warm-up, ``torch.cuda.max_memory_allocated`` and
``max_memory_reserved``. Then one sliding-window prediction of the largest case at 1 mm (nnU-Net's
tile positions at half-patch steps, Gaussian weighting, mirroring as ``training.tta_mirroring``), in
seconds: the first :data:`PREDICTION_TILES` tiles are run and the time scaled to all of them.
nnU-Net's own network is built from the plans the CPU stages wrote (``<out>/plans/<dataset>/``).

Without CUDA nothing runs: every network says "not measured: no GPU". The device calls go through
:class:`CudaBackend`; tests pass a fake one and run the same code on the CPU.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mednext.data.registry import get_dataset
from mednext.networks import get_network
from mednext.nnunet.checkpointing_choice import network_checkpoints_by_default
from mednext.rehearsal.extrapolate import NO_GPU, NOT_REHEARSED, GpuFigures
from mednext.workflow.calibration import GpuNetwork, GpuRun
from mednext.workflow.grid import all_runs

log = logging.getLogger(__name__)
MB = 1e6
#: nnU-Net's gradient clipping (nnUNetTrainer.train_step: clip_grad_norm_(..., 12)).
GRAD_CLIP = 12.0
WARMUP_ITERATIONS = 3
#: Tiles of the sliding-window prediction actually run; the time is scaled to the case's tile count.
PREDICTION_TILES = 24


class CudaBackend:
    """The CUDA calls the GPU stages make (one device)."""

    device = torch.device("cuda")
    autocast_device = "cuda"

    def name(self) -> str:
        return torch.cuda.get_device_name(self.device)

    def total_memory_mb(self) -> float:
        return torch.cuda.get_device_properties(self.device).total_memory / MB

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)

    def reset_peaks(self) -> None:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(self.device)

    def max_allocated_mb(self) -> float:
        return torch.cuda.max_memory_allocated(self.device) / MB

    def max_reserved_mb(self) -> float:
        return torch.cuda.max_memory_reserved(self.device) / MB


def set_checkpointing(model: nn.Module, enabled: bool) -> bool:
    """Switch MedNeXt's block checkpointing; False when the model has none."""
    if hasattr(model, "outside_block_checkpointing"):
        model.outside_block_checkpointing = enabled
        return True
    return False


def _optimizer(network: str, model: nn.Module) -> torch.optim.Optimizer:
    spec = get_network(network)
    if spec.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=0.99, nesterov=True, weight_decay=spec.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay, eps=spec.adam_eps)


def _loss(outputs: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every deep-supervision output, the target resized (nearest) to each."""
    outputs = [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)
    total = outputs[0].new_zeros(())
    for output in outputs:
        scaled = target if output.shape[2:] == target.shape[2:] else \
            nn.functional.interpolate(target.float(), size=output.shape[2:], mode="nearest").long()
        total = total + nn.functional.cross_entropy(output.float(), scaled[:, 0])
    return total


def measure_training(model: nn.Module, network: str, in_channels: int, n_classes: int, patch: Sequence[int], batch: int,
                     autocast_dtype: torch.dtype, iterations: int, backend: Any, warmup: int = WARMUP_ITERATIONS,
                     validation_iterations: int | None = None) -> tuple[float, float, float, float]:
    """(s per training iteration, s per validation iteration, max allocated MB, max reserved MB)."""
    device = backend.device
    model = model.to(device).train()
    optimizer = _optimizer(network, model)
    use_scaler = autocast_dtype == torch.float16 and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    data = torch.randn(batch, in_channels, *patch, device=device)
    target = torch.randint(0, n_classes, (batch, 1, *patch), device=device)
    autocast = device.type == "cuda"

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(backend.autocast_device, dtype=autocast_dtype, enabled=autocast):
            loss = _loss(model(data), target)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        scaler.step(optimizer)
        scaler.update()

    backend.reset_peaks()
    for _ in range(warmup):
        step()
    backend.synchronize()
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    backend.synchronize()
    train_s = (time.perf_counter() - start) / iterations
    allocated, reserved = backend.max_allocated_mb(), backend.max_reserved_mb()
    with torch.no_grad(), torch.autocast(backend.autocast_device, dtype=autocast_dtype, enabled=autocast):
        model.eval()
        model(data)
        backend.synchronize()
        start = time.perf_counter()
        n_val = validation_iterations or iterations
        for _ in range(n_val):
            model(data)
        backend.synchronize()
        val_s = (time.perf_counter() - start) / n_val
    return train_s, val_s, allocated, reserved


def _gaussian(patch: Sequence[int], device: torch.device) -> torch.Tensor:
    """nnU-Net's tile weighting: a Gaussian with sigma 1/8 of the patch, normalised to max 1."""
    axes = [torch.exp(-0.5 * ((torch.arange(n, device=device) - (n - 1) / 2) / (n / 8)) ** 2) for n in patch]
    weight = axes[0]
    for axis in axes[1:]:
        weight = weight[..., None] * axis
    return (weight / weight.max()).clamp_min(1e-3)


def measure_prediction(model: nn.Module, in_channels: int, n_classes: int, patch: Sequence[int], image: Sequence[int],
                       mirroring: bool, autocast_dtype: torch.dtype, backend: Any, max_tiles: int | None = None) -> float:
    """Seconds for one sliding-window prediction of an ``image``-sized volume (logits accumulated on the device).

    With ``max_tiles``, only the first tiles run (every mirror of each) and the time is scaled to all
    tiles: the largest KiTS19 case at 1 mm is 640 tiles of 128³, x 8 mirrors, minutes per network.
    """
    device = backend.device
    model = model.to(device).eval()
    if hasattr(model, "do_ds"):
        model.do_ds = False
    padded = [max(s, p) for s, p in zip(image, patch)]
    volume = torch.randn(1, in_channels, *padded, device=device, dtype=torch.float16 if device.type == "cuda" else torch.float32)
    logits = torch.zeros(n_classes, *padded, device=device, dtype=volume.dtype)
    weights = torch.zeros(padded, device=device, dtype=volume.dtype)
    gaussian = _gaussian(patch, device).to(volume.dtype)
    flips = [()] + ([tuple(a for a in range(2, 2 + len(patch)) if m >> (a - 2) & 1) for m in range(1, 2 ** len(patch))]
                    if mirroring else [])
    from nnunetv2.inference.sliding_window_prediction import compute_steps_for_sliding_window

    grid = np.meshgrid(*compute_steps_for_sliding_window(padded, patch, 0.5), indexing="ij")
    corners = list(zip(*(g.ravel() for g in grid)))
    run = corners if max_tiles is None else corners[:max_tiles]
    backend.synchronize()
    start = time.perf_counter()
    with torch.no_grad(), torch.autocast(backend.autocast_device, dtype=autocast_dtype, enabled=device.type == "cuda"):
        for corner in run:
            window = tuple(slice(int(c), int(c) + p) for c, p in zip(corner, patch))
            tile = volume[(slice(None), slice(None), *window)]
            prediction = None
            for axes in flips:
                out = model(torch.flip(tile, axes) if axes else tile)
                out = out[0] if isinstance(out, (list, tuple)) else out
                out = torch.flip(out, axes) if axes else out
                prediction = out if prediction is None else prediction + out
            logits[(slice(None), *window)] += (prediction[0] / len(flips)).to(logits.dtype) * gaussian
            weights[window] += gaussian
        (logits / weights).argmax(0)
    backend.synchronize()
    return (time.perf_counter() - start) * len(corners) / len(run)


def _training_dataset(network: str, config: Mapping[str, Any]) -> str:
    """The dataset with the most labels among those ``network`` trains on."""
    datasets = sorted({r.dataset for r in all_runs(config) if r.network == network})
    return max(datasets, key=lambda d: (get_dataset(d).num_classes, d))


def build_model(network: str, dataset: str, patch: Sequence[int], plans_dir: Path) -> nn.Module | None:
    """The network for ``dataset``; nnU-Net's own from the plans the CPU stages kept (None if absent)."""
    spec, data = get_network(network), get_dataset(dataset)
    if spec.builder is not None:
        return spec.build(len(data.channel_names), data.num_classes, patch)
    plans_files = sorted((plans_dir / dataset).glob("*.json"))
    plans = next((json.loads(p.read_text()) for p in plans_files if p.name != "dataset.json"), None)
    if plans is None:
        return None
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    architecture = plans["configurations"][spec.configuration]["architecture"]
    return get_network_from_plans(architecture["network_class_name"], architecture["arch_kwargs"],
                                  architecture["_kw_requires_import"], len(data.channel_names), data.num_classes,
                                  deep_supervision=True)


def rehearse_network(network: str, config: Mapping[str, Any], iterations: int, backend: Any, plans_dir: Path,
                     warmup: int = WARMUP_ITERATIONS) -> GpuNetwork | None:
    """Training runs (recipe checkpointing, and off where the recipe turns it on) and one prediction."""
    spec = get_network(network)
    planning, training = config["planning"], config["training"]
    patch = tuple(planning["patch_3d"] if spec.dim == "3d" else planning["patch_2d"])
    batch = int(planning["batch_3d"] if spec.dim == "3d" else planning["batch_2d"])
    dataset = _training_dataset(network, config)
    data = get_dataset(dataset)
    dtype = torch.bfloat16 if training.get("autocast_dtype") == "bfloat16" else torch.float16
    settings = [True, False] if network_checkpoints_by_default(network) else [False]
    runs = []
    for checkpointing in settings:
        model = build_model(network, dataset, patch, plans_dir)
        if model is None:
            log.warning("%s: no plans in %s (run the CPU stages first); not measured", network, plans_dir)
            return None
        set_checkpointing(model, checkpointing)
        train_s, val_s, allocated, reserved = measure_training(model, network, len(data.channel_names), data.num_classes,
                                                                patch, batch, dtype, iterations, backend, warmup)
        runs.append(GpuRun(checkpointing, train_s, val_s, allocated, reserved))
        del model
        backend.reset_peaks()
    predict_s = None
    if spec.dim == "3d" and data.geometry is not None:
        model = build_model(network, dataset, patch, plans_dir)
        largest = data.geometry.largest.shape_at()
        predict_s = measure_prediction(model, len(data.channel_names), data.num_classes, patch, largest,
                                       bool(training.get("tta_mirroring", True)), dtype, backend, PREDICTION_TILES)
        del model
        backend.reset_peaks()
    return GpuNetwork(tuple(runs), predict_s, dataset)


def gpu_stages(config: Mapping[str, Any], device: str, iterations: int, out_dir: Path, backend: Any | None = None,
               networks: Sequence[str] | None = None, warmup: int = WARMUP_ITERATIONS) -> GpuFigures:
    """Every network of the config on the GPU; "not measured: no GPU" without one (never a made-up figure)."""
    if backend is None:
        if device != "cuda":
            return GpuFigures(None, None, {}, NO_GPU)
        if not torch.cuda.is_available():
            return GpuFigures(None, None, {}, f"{NO_GPU} (--device cuda, but CUDA is not available here)")
        backend = CudaBackend()
    measured = {}
    for network in networks or sorted({r.network for r in all_runs(config)}):
        print(f"GPU: {network}", flush=True)
        figures = rehearse_network(network, config, iterations, backend, out_dir / "plans", warmup)
        if figures is not None:
            measured[network] = figures
            for run in figures.runs:
                print(f"  checkpointing {'on ' if run.gradient_checkpointing else 'off'}: {run.s_per_iteration:.3f} s/it, "
                      f"{run.max_allocated_mb / 1000:.1f} GB allocated, {run.reserved_mb / 1000:.1f} GB reserved", flush=True)
    return GpuFigures(backend.name(), backend.total_memory_mb(), measured, NOT_REHEARSED)
