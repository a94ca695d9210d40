"""The paper's plans through nnU-Net's own planner: 1 mm isotropic, fixed 128³ (3D) / 512² (2D) patches.

§3.1: "The data is resampled to 1mm isotropic spacing ..., using input patch size of 128x128x128
and 512x512, and batch size 2 and 14, for 3D and 2D networks respectively." The official v1
planner ``ExperimentPlanner3D_v21_customTargetSpacing_1x1x1`` sets the spacing and hard-sets the
patch (docs/sources.md#recipe-plans). Here an :class:`ExperimentPlanner` subclass does the same inside
nnU-Net v2: nnU-Net fingerprints, plans (normalisation, resampling, nnU-Net's own U-Net topology
for the fixed patch) and preprocesses; only spacing, patch and batch size are pinned.

Batch Dice as v1 (docs/sources.md#recipe-batch-dice), so that the loss is the one the paper trained
with: v1 trains ``3d_fullres`` with batch Dice exactly when its planner made a two-stage plan
(``run/default_configuration.py``: ``batch_dice = True`` for 2d or when ``len(plans_per_stage) > 1``).
This planner makes no ``3d_lowres`` stage, so
:func:`v1_batch_dice` re-derives v1's stage decision from the fingerprint at the target spacing
(``experiment_planner_baseline_3DUNet.py`` ``plan_experiment``) and the plans get its result.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
from nnunetv2.experiment_planning.experiment_planners.network_topology import get_pool_and_conv_props

from mednext.nnunet.paper_plans import (
    CONFIGURATIONS,
    PAPER_BATCH_2D,
    PAPER_BATCH_3D,
    PAPER_PATCH_2D,
    PAPER_PATCH_3D,
    PAPER_SPACING_MM,
)
from mednext.nnunet.paths import DEFAULT_PLANS, nnunet_folder, nnunet_id, require_env

log = logging.getLogger(__name__)

#: v1 ``how_much_of_a_patient_must_the_network_see_at_stage0``: a low-res stage is planned when the
#: median image at target spacing holds at least this many patches (EP ``__init__``).
V1_STAGE0_PATCHES = 4
#: v1 grows the low-res spacing by 1 % per step (EP ``plan_experiment``; v2 uses 3 %).
V1_SPACING_STEP = 1.01


def v1_median_shape(
    spacings: Sequence[Sequence[float]], shapes: Sequence[Sequence[int]], target_spacing: Sequence[float]
) -> np.ndarray:
    """v1's median image shape at ``target_spacing``: per-axis median of the unrounded resampled shapes.

    EP ``plan_experiment``: ``new_shapes = [spacing / target * size]``, ``np.median(..., 0)``, with
    ``all_spacings``/``all_sizes`` of the cropped images (v2: ``spacings``/``shapes_after_crop``).
    """
    spacing_arr = np.asarray(spacings, dtype=np.float64)
    shape_arr = np.asarray(shapes, dtype=np.float64)
    if spacing_arr.ndim != 2 or spacing_arr.shape != shape_arr.shape or len(spacing_arr) == 0:
        raise ValueError(
            f"need one spacing and one shape per case with the same number of axes, found {spacing_arr.shape} "
            f"spacings and {shape_arr.shape} shapes"
        )
    return np.median(spacing_arr / np.asarray(target_spacing, dtype=np.float64) * shape_arr, axis=0)


def v1_has_lowres_stage(median_shape: Sequence[float], patch_size: Sequence[int], target_spacing: Sequence[float]) -> bool:
    """Whether v1's planner keeps a ``3d_lowres`` stage for this median shape and (fixed) patch.

    EP ``plan_experiment`` with the 1 mm planner's fixed patch (P1 ``get_properties_for_stage``):

    1. no low-res stage if ``prod(median) / prod(patch) < 4``;
    2. otherwise grow the low-res spacing by 1 % per step (only the finer axes while some axis is
       more than 2x coarser than another) until ``prod(target / lowres * median) <= 4 * prod(patch)``;
    3. keep that stage only if ``2 * prod(round(target / lowres * median)) < prod(round(median))``
       ("at least 2x smaller" than full resolution).
    """
    median = np.asarray(median_shape, dtype=np.float64)
    target = np.asarray(target_spacing, dtype=np.float64)
    patch_voxels = float(np.prod(np.asarray(patch_size, dtype=np.int64), dtype=np.float64))
    if np.prod(median, dtype=np.float64) / patch_voxels < V1_STAGE0_PATCHES:
        return False
    fullres_voxels = int(np.prod(np.round(median).astype(np.int64), dtype=np.int64))
    lowres = target.copy()
    num_voxels = float(np.prod(median, dtype=np.float64))
    lowres_voxels = None
    while num_voxels > V1_STAGE0_PATCHES * patch_voxels:
        coarse = lowres.max() / lowres > 2
        if np.any(coarse):
            lowres[coarse] *= V1_SPACING_STEP
        else:
            lowres *= V1_SPACING_STEP
        num_voxels = float(np.prod(target / lowres * median, dtype=np.float64))
        lowres_voxels = int(np.prod(np.round(target / lowres * median).astype(np.int64), dtype=np.int64))
    if lowres_voxels is None:  # median exactly 4 patches: v1 would fail here (no stage computed); one stage
        return False
    return 2 * lowres_voxels < fullres_voxels


def v1_batch_dice(
    spacings: Sequence[Sequence[float]],
    shapes: Sequence[Sequence[int]],
    patch_size: Sequence[int] = PAPER_PATCH_3D,
    target_spacing: Sequence[float] = PAPER_SPACING_MM,
) -> bool:
    """v1's ``batch_dice`` for ``3d_fullres``: True exactly when its planner makes two stages (DC ~L71)."""
    return v1_has_lowres_stage(v1_median_shape(spacings, shapes, target_spacing), patch_size, target_spacing)


class FixedPatchPlanner1mm(ExperimentPlanner):
    """nnU-Net's default planner with target spacing 1x1x1 mm and fixed patch/batch sizes.

    No ``3d_lowres``/cascade configuration is made (the paper trains full resolution only);
    ``3d_fullres`` gets v1's ``batch_dice`` (:func:`v1_batch_dice`), 2d keeps nnU-Net's True.
    """

    def __init__(
        self,
        dataset_name_or_id: str | int,
        plans_name: str = DEFAULT_PLANS,
        patch_size_3d: Sequence[int] = PAPER_PATCH_3D,
        patch_size_2d: Sequence[int] = PAPER_PATCH_2D,
        batch_size_3d: int = PAPER_BATCH_3D,
        batch_size_2d: int = PAPER_BATCH_2D,
        spacing: Sequence[float] = PAPER_SPACING_MM,
        gpu_memory_target_in_gb: float = 8,
        preprocessor_name: str = "DefaultPreprocessor",
    ) -> None:
        _check_sizes("patch_size_3d", patch_size_3d, 3)
        _check_sizes("patch_size_2d", patch_size_2d, 2)
        if batch_size_3d < 1 or batch_size_2d < 1:
            raise ValueError(f"batch sizes must be >= 1, found 3D {batch_size_3d}, 2D {batch_size_2d}")
        if len(spacing) != 3 or min(spacing) <= 0:
            raise ValueError(f"spacing must be 3 positive values in mm, found {list(spacing)}")
        super().__init__(
            dataset_name_or_id,
            gpu_memory_target_in_gb=gpu_memory_target_in_gb,
            preprocessor_name=preprocessor_name,
            plans_name=plans_name,
            overwrite_target_spacing=[float(s) for s in spacing],
            suppress_transpose=False,
        )
        self.fixed_patch = {3: tuple(int(p) for p in patch_size_3d), 2: tuple(int(p) for p in patch_size_2d)}
        self.fixed_batch = {3: int(batch_size_3d), 2: int(batch_size_2d)}
        self.lowres_creation_threshold = 0.0  # never add a 3d_lowres configuration

    @staticmethod
    def static_estimate_VRAM_usage(
        patch_size: tuple[int, ...],
        input_channels: int,
        output_channels: int,
        arch_class_name: str,
        arch_kwargs: dict,
        arch_kwargs_req_import: tuple[str, ...],
    ) -> int:
        """nnU-Net's estimate, safe with ``nnUNet_n_proc_DA=0`` (nnU-Net passes 0 to ``set_num_threads``).

        The network is built on the meta device: the estimate counts feature-map voxels from the
        layers' shapes, and skipping the weight initialisation makes planning a large dataset about
        30x faster (nnU-Net's patch search builds a network per candidate patch).
        """
        from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

        with torch.device("meta"):
            net = get_network_from_plans(
                arch_class_name, arch_kwargs, arch_kwargs_req_import, input_channels, output_channels, allow_init=False
            )
        return net.compute_conv_feature_map_size(patch_size)

    def get_plans_for_configuration(
        self,
        spacing: np.ndarray | tuple[float, ...] | list[float],
        median_shape: np.ndarray | tuple[int, ...],
        data_identifier: str,
        approximate_n_voxels_dataset: float,
        _cache: dict,
    ) -> dict:
        """nnU-Net's configuration, then the fixed patch, batch and a U-Net topology for that patch."""
        plan = super().get_plans_for_configuration(spacing, median_shape, data_identifier, approximate_n_voxels_dataset, _cache)
        dim = len(spacing)
        patch = self.fixed_patch[dim]
        _, pool_op_kernel_sizes, conv_kernel_sizes, adjusted, _ = get_pool_and_conv_props(
            spacing, patch, self.UNet_featuremap_min_edge_length, 999999
        )
        if tuple(int(p) for p in adjusted) != patch:
            raise ValueError(
                f"patch {list(patch)} does not fit nnU-Net's U-Net topology at spacing {list(spacing)} "
                f"(nnU-Net would use {[int(p) for p in adjusted]}); choose sizes divisible by a power of two"
            )
        n_stages = len(pool_op_kernel_sizes)
        max_features = self.UNet_max_features_2d if dim == 2 else self.UNet_max_features_3d
        plan["architecture"]["arch_kwargs"].update(
            {
                "n_stages": n_stages,
                "features_per_stage": tuple(min(max_features, self.UNet_base_num_features * 2**i) for i in range(n_stages)),
                "kernel_sizes": conv_kernel_sizes,
                "strides": pool_op_kernel_sizes,
                "n_conv_per_stage": self.UNet_blocks_per_stage_encoder[:n_stages],
                "n_conv_per_stage_decoder": self.UNet_blocks_per_stage_decoder[: n_stages - 1],
            }
        )
        plan["patch_size"] = patch
        plan["batch_size"] = self.fixed_batch[dim]
        return plan

    def v1_batch_dice_3d(self) -> bool:
        """v1's ``batch_dice`` for ``3d_fullres`` from this dataset's fingerprint, spacing and patch."""
        return v1_batch_dice(
            self.dataset_fingerprint["spacings"],
            self.dataset_fingerprint["shapes_after_crop"],
            self.fixed_patch[3],
            self.overwrite_target_spacing,
        )

    def save_plans(self, plans: dict) -> None:
        """nnU-Net's plans with ``3d_fullres`` ``batch_dice`` set as v1 would have trained it."""
        full = plans["configurations"].get("3d_fullres")
        if full is not None:
            full["batch_dice"] = self.v1_batch_dice_3d()
            log.info("3d_fullres batch_dice=%s written to the plans (v1's stage rule at %s mm, patch %s; "
                     "nnU-Net's printout above shows its own value)",
                     full["batch_dice"], list(self.overwrite_target_spacing), list(self.fixed_patch[3]))
        super().save_plans(plans)


def _check_sizes(name: str, sizes: Sequence[int], n: int) -> None:
    if len(sizes) != n or any(int(s) < 1 for s in sizes):
        raise ValueError(f"{name} must be {n} positive sizes, found {list(sizes)}")


def plan_and_preprocess(
    dataset: int | str,
    plans_name: str = DEFAULT_PLANS,
    patch_size_3d: Sequence[int] = PAPER_PATCH_3D,
    patch_size_2d: Sequence[int] = PAPER_PATCH_2D,
    batch_size_3d: int = PAPER_BATCH_3D,
    batch_size_2d: int = PAPER_BATCH_2D,
    configurations: Sequence[str] = CONFIGURATIONS,
    preprocess: bool = True,
    num_processes: int = 2,
    verify_dataset: bool = False,
    refresh_fingerprint: bool = False,
) -> Path:
    """Fingerprint (if missing), plan with :class:`FixedPatchPlanner1mm`, optionally preprocess.

    ``dataset``: registry key, nnU-Net folder name or id. Uses ``$nnUNet_raw`` and
    ``$nnUNet_preprocessed``; returns the plans file.
    """
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprint_dataset, preprocess_dataset

    unknown = sorted(set(configurations) - set(CONFIGURATIONS))
    if unknown:
        raise ValueError(f"unknown configurations {unknown}; this planner makes {list(CONFIGURATIONS)}")
    require_env("nnUNet_raw")
    preprocessed = require_env("nnUNet_preprocessed")
    name = nnunet_folder(dataset)
    dataset_id = nnunet_id(name)
    fingerprint = preprocessed / name / "dataset_fingerprint.json"
    if refresh_fingerprint or not fingerprint.is_file():
        extract_fingerprint_dataset(
            dataset_id, num_processes=num_processes, check_dataset_integrity=verify_dataset, clean=True, verbose=False
        )
    planner = FixedPatchPlanner1mm(
        dataset_id,
        plans_name=plans_name,
        patch_size_3d=patch_size_3d,
        patch_size_2d=patch_size_2d,
        batch_size_3d=batch_size_3d,
        batch_size_2d=batch_size_2d,
    )
    planner.plan_experiment()
    plans_file = preprocessed / name / f"{plans_name}.json"
    log.info("plans written to %s", plans_file)
    if preprocess and configurations:
        preprocess_dataset(dataset_id, plans_name, tuple(configurations), num_processes=[num_processes], verbose=False)
    return plans_file
