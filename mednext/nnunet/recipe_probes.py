"""Recipe items read from what nnU-Net actually builds and runs, not from names or defaults.

- :func:`augmentation_items`: the training transforms nnU-Net's ``get_dataloaders`` builds for the
  trainer (rotation, scaling, elastic, noise, blur, brightness, contrast, low resolution, gamma,
  mirroring, interpolation modes) and the deep-supervision target scales and downsampling.
- :func:`inference_averaging`: nnU-Net's predictor (validation and ``nnUNetv2_predict`` use it) run
  on a tiny network with two overlapping tiles and mirroring; whether it averaged logits or
  softmax probabilities is read off the overlap.
- :func:`mixed_precision`: the trainer's own ``train_step`` run once on a one-weight network; records
  whether it entered autocast for the training device and whether the loss went through its grad
  scaler. A batch that stays on the host stands in for a GPU this machine may not have.

Each reading builds throw-away objects and restores what it swaps on the trainer.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from mednext.nnunet.paths import temporary_environ

#: torch interpolation modes by the spline order they implement
_ORDER_NAMES = {"nearest": "nearest", "nearest-exact": "nearest", "bilinear": "linear", "trilinear": "linear",
                "linear": "linear", "bicubic": "cubic"}


@contextlib.contextmanager
def swapped(obj: object, name: str, value: object) -> Iterator[None]:
    """``obj.name = value`` for the duration of the block."""
    saved = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, saved)


def training_transforms(trainer: Any) -> Any:
    """The training pipeline ``nnUNetTrainer.get_dataloaders`` builds, with the same arguments."""
    rotation, dummy_2d, _, mirror_axes = trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    labels = trainer.label_manager
    return trainer.get_training_transforms(
        trainer.configuration_manager.patch_size, rotation, trainer._get_deep_supervision_scales(), mirror_axes,
        dummy_2d, use_mask_for_norm=trainer.configuration_manager.use_mask_for_norm, is_cascaded=trainer.is_cascaded,
        foreground_labels=labels.foreground_labels,
        regions=labels.foreground_regions if labels.has_regions else None, ignore_label=labels.ignore_label,
    )


def _steps(pipeline: Any) -> list[tuple[Any, float]]:
    """(transform, probability of being applied to a sample) for each step of a composed pipeline."""
    steps = []
    for step in getattr(pipeline, "transforms", [pipeline]):
        inner = getattr(step, "transform", None)
        if inner is not None and hasattr(step, "apply_probability"):
            steps.append((inner, float(step.apply_probability)))
        else:
            steps.append((step, 1.0))
    return steps


def _range(value: Any) -> list[float] | None:
    """A sampling range as a list; nnU-Net wraps some in a ``BGContrast`` (its ``contrast_range``)."""
    value = getattr(value, "contrast_range", value)
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return [float(value), float(value)]
    return [float(v) for v in value]


def _order(mode: str) -> str:
    return _ORDER_NAMES.get(mode, mode)


def nearest_downsampling(segmentation: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Order-0 resampling of voxel centres: output voxel ``i`` takes input voxel ``floor((i + 0.5) n_in / n_out)``
    per axis, in exact integer arithmetic (on a tie, an output centre on a voxel border, the upper voxel;
    at the factor-2 scales of deep supervision every voxel is such a tie)."""
    index = [np.minimum((2 * np.arange(o) + 1) * n // (2 * o), n - 1) for n, o in zip(segmentation.shape, shape)]
    return segmentation[np.ix_(*index)]


def _ds_downsampling(transform: Any) -> str:
    """How the deep-supervision transform shrinks targets, read by running it on a random label probe
    (at least 32 voxels per axis, sizes of unequal parity, and at least two voxels at the smallest scale)."""
    factors = np.array([np.broadcast_to(np.asarray(s, dtype=float), (3,)) for s in transform.ds_scales])
    if np.all(factors == 1.0):
        return "none"
    shape = [max(32, math.ceil(2 / factors[:, axis].min())) + axis for axis in range(3)]
    probe = np.random.default_rng(0).integers(0, 5, size=shape).astype(np.int16)
    outputs = transform(segmentation=torch.from_numpy(probe)[None])["segmentation"]
    for out in outputs:
        result = out[0].numpy()
        if result.shape != probe.shape and not np.array_equal(result, nearest_downsampling(probe, result.shape)):
            return "other than nearest voxel centre"
    return "nearest voxel centre"


def augmentation_items(trainer: Any) -> dict[str, Any]:
    """The augmentation and deep-supervision target items of the card, from the built training pipeline."""
    by_name: dict[str, list[tuple[Any, float]]] = {}
    for transform, p in _steps(training_transforms(trainer)):
        by_name.setdefault(type(transform).__name__, []).append((transform, p))

    def one(name: str) -> tuple[Any, float] | tuple[None, float]:
        found = by_name.get(name, [])
        return found[0] if found else (None, 0.0)

    spatial, _ = one("SpatialTransform")
    noise, p_noise = one("GaussianNoiseTransform")
    blur, p_blur = one("GaussianBlurTransform")
    brightness, p_brightness = one("MultiplicativeBrightnessTransform")
    contrast, p_contrast = one("ContrastTransform")
    lowres, p_lowres = one("SimulateLowResolutionTransform")
    mirror, _ = one("MirrorTransform")
    ds, _ = one("DownsampleSegForDSTransform")
    gammas = {float(t.p_invert_image): (t, p) for t, p in by_name.get("GammaTransform", [])}
    gamma, p_gamma = gammas.get(0.0, (None, 0.0))
    inverted, p_inverted = gammas.get(1.0, (None, 0.0))
    dims = len(trainer.configuration_manager.patch_size)
    rotation = _range(getattr(spatial, "rotation", None))
    return {
        "aug_rotation_deg": None if rotation is None else [round(math.degrees(r), 6) for r in rotation],
        "aug_rotation_p": float(spatial.p_rotation) if spatial else 0.0,
        "aug_rotation_p_per_axis": float(spatial.p_rot_per_axis) if spatial else None,
        "aug_scaling": _range(getattr(spatial, "scaling", None)),
        "aug_scaling_p": float(spatial.p_scaling) if spatial else 0.0,
        "aug_scaling_same_for_all_axes": bool(spatial.p_synchronize_scaling_across_axes == 1) if spatial else None,
        "aug_elastic_p": float(spatial.p_elastic_deform) if spatial else 0.0,
        "aug_image_interpolation": _order(spatial.mode_image) if spatial else None,
        "aug_seg_interpolation": _order(spatial.mode_seg) if spatial else None,
        "aug_noise_variance": _range(getattr(noise, "noise_variance", None)),
        "aug_noise_p": p_noise,
        "aug_blur_sigma": _range(getattr(blur, "blur_sigma", None)),
        "aug_blur_p": p_blur,
        "aug_blur_p_per_channel": float(blur.p_per_channel) if blur else None,
        "aug_brightness": _range(getattr(brightness, "multiplier_range", None)),
        "aug_brightness_p": p_brightness,
        "aug_contrast": _range(getattr(contrast, "contrast_range", None)),
        "aug_contrast_p": p_contrast,
        "aug_lowres_zoom": _range(getattr(lowres, "scale", None)),
        "aug_lowres_p": p_lowres,
        "aug_lowres_p_per_channel": float(lowres.p_per_channel) if lowres else None,
        "aug_lowres_upsampling": _order(lowres.upmodes[dims]) if lowres else None,
        "aug_gamma": _range(getattr(gamma, "gamma", None)),
        "aug_gamma_p": p_gamma,
        "aug_inverted_gamma_p": p_inverted,
        "aug_gamma_retain_stats": bool(gamma.p_retain_stats == 1) if gamma else None,
        "augmentation_mirroring_axes": None if mirror is None else [int(a) for a in mirror.allowed_axes],
        "ds_target_scales": None if ds is None else [[float(v) for v in np.broadcast_to(s, (dims,))] for s in ds.ds_scales],
        "ds_target_downsampling": None if ds is None else _ds_downsampling(ds),
    }


class _PositionNet(nn.Module):
    """Logits that depend on where a tile lies: class 0 gets the tile's first voxel along the last axis,
    every other class 0 (so overlapping tiles and mirrored passes disagree in a known way)."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = x[:, :1, ..., :1].expand(x.shape[0], 1, *x.shape[2:])
        rest = torch.zeros(x.shape[0], self.n_classes - 1, *x.shape[2:], dtype=x.dtype, device=x.device)
        return torch.cat([first, rest], dim=1)


def inference_averaging(trainer: Any) -> str:
    """``"logits"`` or ``"softmax"``: what nnU-Net's predictor averages over overlapping tiles and mirrors.

    Two 4-voxel tiles overlap by half along the last axis of a 4x4x6 image, each mirrored along that
    axis; the network's class-0 logit is the first voxel its input has there. The overlap then holds
    either the mean of the four logits or the mean of their four softmax vectors.
    """
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager

    n_classes = trainer.label_manager.num_segmentation_heads
    n_channels = len(trainer.dataset_json.get("channel_names", trainer.dataset_json.get("modality", {"0": "x"})))
    configuration = {**trainer.configuration_manager.configuration, "patch_size": [4, 4, 4]}
    # The predictor prints that a CPU predictor keeps data on the CPU, and would torch.compile the probe
    # network when nnUNet_compile is set (half a minute for nothing: compiling does not change what is averaged).
    with contextlib.redirect_stdout(io.StringIO()), temporary_environ({"nnUNet_compile": "0"}):
        predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=False, use_mirroring=True,
                                    perform_everything_on_device=False, device=torch.device("cpu"), verbose=False,
                                    allow_tqdm=False)
        predictor.manual_initialization(_PositionNet(n_classes), trainer.plans_manager,
                                        ConfigurationManager(configuration), None, trainer.dataset_json,
                                        type(trainer).__name__, (2,))
    column = torch.tensor([0.0, 1.0, 2.0, 4.0, 3.0, 6.0])
    image = column.expand(n_channels, 4, 4, 6).contiguous()
    with torch.no_grad():
        overlap = predictor.predict_sliding_window_return_logits(image)[:, 0, 0, 2].double()
    # tile A covers columns 0-3 (first 0, mirrored first 4), tile B columns 2-5 (first 2, mirrored first 6)
    passes = torch.zeros(4, n_classes, dtype=torch.float64)
    passes[:, 0] = torch.tensor([0.0, 4.0, 2.0, 6.0])
    candidates = {"logits": passes.mean(0), "softmax": torch.softmax(passes, dim=1).mean(0)}
    for name, expected in candidates.items():
        # nnU-Net accumulates in half precision; the two candidates differ by far more than its rounding
        if torch.allclose(overlap, expected, rtol=2e-3, atol=2e-3):
            return name
    return f"neither logits nor softmax (overlap {overlap.tolist()})"


class _HostTensor(torch.Tensor):
    """A batch tensor that stays on the host when ``train_step`` sends it to the (maybe missing) GPU."""

    def to(self, *args: Any, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        return self.as_subclass(torch.Tensor)


class _ScalerSpy:
    """Stands in for the trainer's grad scaler during the probe step; remembers whether the loss was scaled."""

    def __init__(self) -> None:
        self.scaled = False

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        self.scaled = True
        return loss

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        return None

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.step()

    def update(self) -> None:
        return None


def mixed_precision(trainer: Any) -> dict[str, Any]:
    """Autocast and loss scaling of one real nnU-Net ``train_step`` on the trainer's device.

    Returns ``amp`` (autocast entered, enabled, for the trainer's CUDA device), ``amp_grad_scaler``
    (the loss went through the trainer's grad scaler) and ``amp_autocast_device`` (the device type
    autocast was entered for, None if not).
    """
    import nnunetv2.training.nnUNetTrainer.nnUNetTrainer as nnunet_trainer_module

    entered: list[tuple[str, bool]] = []

    @contextlib.contextmanager
    def recording_autocast(device_type: str, *args: Any, enabled: bool = True, **kwargs: Any) -> Iterator[None]:
        entered.append((str(device_type), bool(enabled)))
        yield

    network = nn.Conv3d(1, 1, 1)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.0)
    spy = _ScalerSpy() if getattr(trainer, "grad_scaler", None) is not None else None
    batch = {"data": torch.ones(1, 1, 2, 2, 2).as_subclass(_HostTensor),
             "target": torch.zeros(1, 1, 2, 2, 2).as_subclass(_HostTensor)}
    with contextlib.ExitStack() as stack:
        for name, value in (("network", network), ("optimizer", optimizer), ("grad_scaler", spy),
                            ("loss", lambda output, target: output.float().mean())):
            stack.enter_context(swapped(trainer, name, value))
        stack.enter_context(swapped(nnunet_trainer_module, "autocast", recording_autocast))
        # nnU-Net's own step, where autocast and the scaler live: the project's layers above it only add
        # bookkeeping (stop signals, the divergence guard) that must not count a probe as a training step
        # (the card is rewritten mid-training, after a rescue)
        nnunet_trainer_module.nnUNetTrainer.train_step(trainer, batch)
    used = [(device, on) for device, on in entered if on]
    return {
        "amp": any(device == "cuda" for device, _ in used),
        "amp_autocast_device": used[0][0] if used else None,
        "amp_grad_scaler": bool(spy is not None and spy.scaled),
    }
