"""``mednext-repro gpu-hours``: the GPU hours a workflow config's training jobs will take, before submission."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("gpu-hours", help=__doc__.split(": ", 1)[1])
    parser.add_argument("--config", type=Path, default=Path("config/paper.yaml"), help="workflow config")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mednext.workflow.calibration import load_calibration
    from mednext.workflow.config_source import load_workflow_config
    from mednext.workflow.grid import all_runs, check_config
    from mednext.workflow.resources import REFERENCE_GPU, gpu_hours_table, merged_resources, retries_needed

    config = load_workflow_config(args.config)
    check_config(config, str(args.config))
    table = gpu_hours_table(all_runs(config), config)
    calibration = load_calibration(config)
    print(f"GPU hours on one {REFERENCE_GPU} (MedNeXt: the paper's s/epoch; baselines: nnU-Net Revisited's A100 "
          "hours or their size class); revisited_a100_h: Revisited's measured hours for comparison")
    if "measured_h_per_run" in table:
        print(f"measured_h_per_run / measured_gpu_hours: MEASURED by a rehearsal on {calibration.gpu_device} "
              f"({calibration.path}, {calibration.written_utc[:16]}); hours_per_run / gpu_hours: the A100 ESTIMATES")
    print(table.to_string(index=False, na_rep="", float_format=lambda v: f"{v:,.1f}"))
    print(f"total: {int(table['jobs'].sum())} training jobs, {table['gpu_hours'].sum():,.0f} GPU hours on one {REFERENCE_GPU} "
          f"({config['training']['epochs']} epochs x {config['training']['iterations_per_epoch']} iterations), estimated")
    if "measured_h_per_run" in table:
        measured = table.dropna(subset=["measured_h_per_run"])
        print(f"measured: {measured['measured_gpu_hours'].sum():,.0f} GPU hours on {calibration.gpu_device} for the "
              f"{int(measured['jobs'].sum())} training jobs of the {len(measured)} rehearsed networks "
              f"(the same jobs estimated: {measured['gpu_hours'].sum():,.0f} A100 hours)")
    if config.get("device", "cuda") == "cuda":
        resources = merged_resources(config)
        print(f"per attempt: the hours (measured where rehearsed, else estimated) x {resources['runtime_safety']} "
              f"capped at {resources['max_runtime_h']} h; "
              f"the longest training needs retries: {retries_needed(config)} in the profile (slurm/config.yaml)")
    return 0
