"""One call for the first GPU that is lent: speed and memory of the training step.

For MedNeXt-L k3/k5 and S k3 at 128³ x batch 2 (§3.1), through the real nnU-Net trainer
(``ReproTrainer.train_step``: nnU-Net's autocast, GradScaler, AdamW, deep-supervision loss), one table
of seconds per iteration and peak GPU memory for:

- the official protocol (gradient checkpointing as the network defines it: on for M/L; fp16 autocast;
  no compile; contiguous layout), then one knob changed per row: checkpointing forced on / off,
  bf16 autocast, torch.compile, channels-last 3D;
- the official v1 network (``nnunet_mednext`` from ``--official-root``, a checkout of
  MIC-DKFZ/MedNeXt) in the same trainer for the same settings. The official package is not installed
  with this project; without it the rows say so, and the project network stands in (its forward
  equals the official one: tests/network/test_mednext_numerics.py).

Prints torch, CUDA, cuDNN, driver versions and the GPU name. A time budget (default 7 min) keeps the
call under 8 minutes: rows it cannot reach are listed as skipped. ``--smoke`` runs the same code on the
CPU with MedNeXt-S, a 32x16x16 patch, batch 1 and 2 iterations per row (CI); its timings mean nothing.

    python benchmarks/gpu_check.py                      # on the GPU
    python benchmarks/gpu_check.py --official-root /path/to/MedNeXt
    python benchmarks/gpu_check.py --smoke              # CPU, CI
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from mednext.nnunet.job_settings import TrainingJob, TrainingSettings
from mednext.nnunet.paths import temporary_environ
from mednext.nnunet.runner import nnunet_job_env

NETWORKS = ("MedNeXt-L_k3", "MedNeXt-L_k5", "MedNeXt-S_k3")
N_CLASSES = 14  # BTCV's 13 organs + background (§3)
DS_OUTPUTS = 5


@dataclass(frozen=True)
class Setting:
    """One row's knobs (the config's ``training:`` keys)."""

    label: str
    gradient_checkpointing: str = "auto"  # auto | on | off
    autocast_dtype: str = "float16"
    compile: bool = False
    channels_last: bool = False

    def env(self) -> dict[str, str]:
        """The environment ``mednext-repro train`` would give the training process for these knobs."""
        settings = TrainingSettings.paper().replace(gradient_checkpointing=self.gradient_checkpointing,
                                                    autocast_dtype=self.autocast_dtype, compile=self.compile,
                                                    channels_last=self.channels_last)
        return nnunet_job_env(TrainingJob(settings))


SETTINGS = (
    Setting("official protocol"),
    Setting("checkpointing on", gradient_checkpointing="on"),
    Setting("checkpointing off", gradient_checkpointing="off"),
    Setting("bf16 autocast", autocast_dtype="bfloat16"),
    Setting("compile", compile=True),
    Setting("channels-last", channels_last=True),
)



def _plans(patch: tuple[int, int, int], batch: int) -> tuple[dict, dict]:
    """A 1 mm, one-channel CT plans file and dataset.json for a fixed patch (no data needed)."""
    dataset_json = {"channel_names": {"0": "CT"}, "labels": {"background": 0, **{f"organ{i}": i for i in range(1, N_CLASSES)}},
                    "numTraining": 1, "file_ending": ".nii.gz"}
    config = {
        "data_identifier": "gpu_check_3d_fullres", "preprocessor_name": "DefaultPreprocessor", "batch_size": batch,
        "patch_size": list(patch), "median_image_size_in_voxels": list(patch), "spacing": [1.0, 1.0, 1.0],
        "normalization_schemes": ["CTNormalization"], "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape", "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None},
        "architecture": {"network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                         "arch_kwargs": {}, "_kw_requires_import": []},
        "batch_dice": False,
    }
    plans = {
        "dataset_name": "Dataset999_GpuCheck", "plans_name": "nnUNetPlans_1mm", "original_median_spacing_after_transp": [1.0] * 3,
        "original_median_shape_after_transp": list(patch), "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2], "experiment_planner_used": "gpu_check",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": {"max": 1000.0, "mean": 100.0, "median": 100.0, "min": -1000.0,
                                                              "percentile_00_5": -900.0, "percentile_99_5": 900.0, "std": 200.0}},
        "configurations": {"3d_fullres": config},
    }
    return plans, dataset_json


def official_factory(official_root: Path | None) -> tuple[Callable[[str, int], torch.nn.Module] | None, str]:
    """The official ``create_mednext_v1`` (or None) and a note saying where it came from."""
    if official_root is not None:
        sys.path.insert(0, str(official_root))
    try:
        from nnunet_mednext.network_architecture.mednextv1.create_mednext_v1 import create_mednext_v1
    except ImportError as error:
        return None, (f"official v1 network not importable ({error}); pass --official-root with a checkout of "
                      "MIC-DKFZ/MedNeXt. The project network is numerically identical to it "
                      "(tests/network/test_mednext_numerics.py), so the project rows stand for it")

    def build(network: str, in_channels: int) -> torch.nn.Module:
        variant, kernel = network.split("-")[1].split("_k")
        return create_mednext_v1(in_channels, N_CLASSES, variant, int(kernel), True)

    return build, f"official v1 network from {official_root or 'the installed nnunet_mednext'}"


def _batch(patch: tuple[int, int, int], batch: int, device: torch.device) -> dict:
    generator = torch.Generator().manual_seed(0)
    data = torch.randn((batch, 1, *patch), generator=generator)
    targets = [torch.randint(0, N_CLASSES, (batch, 1, *(p // 2**i for p in patch)), generator=generator).float()
               for i in range(DS_OUTPUTS)]
    return {"data": data.to(device), "target": [t.to(device) for t in targets]}


def measure(network: str, setting: Setting, patch: tuple[int, int, int], batch: int, iterations: int, warmup: int,
            device: torch.device, workdir: Path, official: Callable[[str, int], torch.nn.Module] | None = None) -> dict:
    """Seconds per ``train_step`` and peak memory for one network and setting."""
    from mednext.nnunet.trainer_classes import trainer_for_network

    plans, dataset_json = _plans(patch, batch)
    preprocessed = workdir / "nnUNet_preprocessed" / plans["dataset_name"] / "gpu_check_3d_fullres"
    preprocessed.mkdir(parents=True, exist_ok=True)
    (preprocessed / "case.b2nd").touch()  # nnU-Net infers the dataset class from a file ending
    env = {**setting.env(), "nnUNet_preprocessed": str(workdir / "nnUNet_preprocessed"),
           "nnUNet_results": str(workdir / "nnUNet_results"), "nnUNet_raw": str(workdir / "nnUNet_raw")}
    with temporary_environ(env), contextlib.redirect_stdout(io.StringIO()):
        trainer = trainer_for_network(network)(plans={**plans, "continue_training": False}, configuration="3d_fullres", fold=0,
                                               dataset_json=dataset_json, device=device)
        trainer.initialize()
        if official is not None:
            trainer.network = official(network, trainer.num_input_channels).to(device)
            if setting.compile and trainer._do_i_compile():
                trainer.network = torch.compile(trainer.network)
            trainer.apply_speed_settings()
            trainer.optimizer, trainer.lr_scheduler = trainer.configure_optimizers()
        trainer.network.train()
        from mednext.nnunet.trainers import _unwrap

        checkpointing_active = bool(getattr(_unwrap(trainer.network), "outside_block_checkpointing", False))
        data = _batch(patch, batch, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(warmup):
            trainer.train_step(data)
        if device.type == "cuda":
            torch.cuda.synchronize()
        first = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(iterations):
            trainer.train_step(data)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / iterations
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    del trainer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"s_per_iter": seconds, "warmup_s": first, "peak_gib": peak, "checkpointing_active": checkpointing_active}


def versions(device: torch.device) -> dict[str, str]:
    """torch, CUDA, cuDNN, driver and GPU name (timings depend on all of them: cuDNN picks the depthwise 3D
    convolution kernels, and its choices change between versions)."""
    info = {"torch": torch.__version__, "cuda": str(torch.version.cuda), "cudnn": str(torch.backends.cudnn.version())}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        try:
            info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                            capture_output=True, text=True, timeout=30).stdout.strip() or "unknown"
        except (OSError, subprocess.SubprocessError):
            info["driver"] = "unknown (no nvidia-smi)"
    else:
        info["gpu"] = "none (CPU smoke run: timings are not GPU figures)"
        info["driver"] = "n/a"
    return info


def run_check(smoke: bool, official_root: Path | None, budget_s: float,
              iterations: int | None = None) -> tuple[pd.DataFrame, dict, str]:
    """The table, the versions and the official-network note."""
    device = torch.device("cpu" if smoke or not torch.cuda.is_available() else "cuda")
    if smoke:
        # the smallest MedNeXt patch (the 1/16 bottleneck keeps 2 voxels); 2 iterations per row
        networks, patch, batch, iters, warmup = ("MedNeXt-S_k3",), (32, 16, 16), 1, iterations or 1, 1
    else:
        networks, patch, batch, iters, warmup = NETWORKS, (128, 128, 128), 2, iterations or 5, 2
    official, note = official_factory(official_root)
    rows = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        for network in networks:
            for source in ("project", "official v1"):
                for setting in SETTINGS:
                    row = {"network": network, "source": source, "setting": setting.label,
                           "checkpointing": setting.gradient_checkpointing, "autocast": setting.autocast_dtype,
                           "compile": setting.compile, "channels_last": setting.channels_last}
                    if source == "official v1" and official is None:
                        rows.append({**row, "status": "official code unavailable (see note)"})
                        continue
                    if not smoke and time.monotonic() - started > budget_s:  # the smoke run must reach every row
                        rows.append({**row, "status": "skipped (time budget)"})
                        continue
                    try:
                        result = measure(network, setting, patch, batch, iters, warmup, device, Path(tmp),
                                         official if source == "official v1" else None)
                        rows.append({**row, **result, "status": "ok"})
                    except torch.OutOfMemoryError:
                        torch.cuda.empty_cache()
                        rows.append({**row, "status": "out of memory"})
                    print(f"[{time.monotonic() - started:6.1f} s] {network} {source} {setting.label}: {rows[-1]['status']}",
                          file=sys.stderr, flush=True)
    columns = ["network", "source", "setting", "checkpointing", "autocast", "compile", "channels_last",
               "checkpointing_active", "s_per_iter", "warmup_s", "peak_gib", "status"]
    return pd.DataFrame(rows).reindex(columns=columns), versions(device), note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, 32x16x16 patch, batch 1, 2 iterations per row (CI)")
    parser.add_argument("--official-root", type=Path, help="folder holding nnunet_mednext (a MIC-DKFZ/MedNeXt checkout)")
    parser.add_argument("--budget-min", type=float, default=7.0, help="stop measuring after this many minutes (default 7)")
    parser.add_argument("--iterations", type=int, help="timed iterations per row (default 5; smoke 2)")
    parser.add_argument("--csv", type=Path, help="also write the table as CSV")
    args = parser.parse_args(argv)
    table, info, note = run_check(args.smoke, args.official_root, args.budget_min * 60, args.iterations)
    print("versions: " + json.dumps(info))
    print(f"note: {note}")
    shown = table.drop(columns=["checkpointing", "autocast", "compile", "channels_last"])
    print(shown.to_string(index=False, na_rep="", float_format=lambda v: f"{v:.3f}"))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
