"""``train``: one (dataset, network, fold) with stock ``nnUNetv2_train``; reruns resume (§3.1)."""

from __future__ import annotations

import argparse
import logging
import subprocess

from mednext.commands import add_dataset_argument_with_legacy_id
from mednext.nnunet.paths import DEFAULT_PLANS

log = logging.getLogger(__name__)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments naming one run: dataset, network, fold, plans, configuration, device."""
    add_dataset_argument_with_legacy_id(parser)
    parser.add_argument("--network", required=True, help="registry name, e.g. MedNeXt-B_k5 (mednext.networks)")
    parser.add_argument("--fold", required=True, help="fold 0-4 or 'all'")
    parser.add_argument("--plans-name", default=DEFAULT_PLANS, help=f"plans identifier (default {DEFAULT_PLANS})")
    parser.add_argument("--configuration", default=None, help="nnU-Net configuration (default: the network's)")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu", "mps"), help="default cuda")


def run_spec(args: argparse.Namespace):  # -> RunSpec
    from mednext.nnunet.paths import dataset_id_of
    from mednext.nnunet.runner import RunSpec

    fold = args.fold if args.fold == "all" else int(args.fold)
    return RunSpec(dataset_id_of(args.dataset), args.network, fold, args.plans_name, args.configuration)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train one fold of one network (resumes an interrupted run)")
    add_run_arguments(parser)
    parser.add_argument("--epochs", type=int, help="epochs (paper: 1000)")
    parser.add_argument("--iters", type=int, help="training iterations per epoch (paper: 250)")
    parser.add_argument("--val-iters", type=int, help="validation iterations per epoch (nnU-Net: 50)")
    parser.add_argument("--save-every", type=int, help="write checkpoint_latest every N epochs (nnU-Net: 50)")
    parser.add_argument("--workers", type=int,
                        help="the CPUs the job holds: nnU-Net's augmentation and export processes (nnUNet_n_proc_DA, "
                             "nnUNet_def_n_proc) and, on the CPU, torch's threads; default: nnU-Net's own (every core)")
    parser.add_argument("--no-tta-mirroring", action="store_true",
                        help="validate without mirroring test-time augmentation (8x fewer passes; the paper mirrors)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                        help="torch.compile the network on CUDA (nnU-Net's nnUNet_compile; default off, as the official runs)")
    parser.add_argument("--checkpoint-minutes", type=float,
                        help="also write checkpoint_latest every N minutes of wall time (default 30); SIGTERM/SIGUSR1 "
                             "save it and exit non-zero so that a retry resumes")
    parser.add_argument("--gradient-checkpointing", choices=("auto", "on", "off"),
                        help="auto (default): the network's own (MedNeXt M/L on, as the official code)")
    parser.add_argument("--autocast-dtype", choices=("float16", "bfloat16"), help="CUDA autocast dtype (default float16)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last_3d weights on CUDA")
    parser.set_defaults(func=run)


def nnunet_process_env(workers: int | None, tta_mirroring: bool) -> dict[str, str]:
    """Environment for the ``nnUNetv2_train`` subprocess: worker counts and the mirroring switch."""
    from mednext.nnunet.job_settings import ENV_CPU_THREADS, ENV_MIRRORING

    env: dict[str, str] = {}
    if workers is not None:
        if workers < 1:
            raise SystemExit(f"train: --workers must be a positive integer, got {workers}")
        env.update(nnUNet_n_proc_DA=str(workers), nnUNet_def_n_proc=str(workers), **{ENV_CPU_THREADS: str(workers)})
    if not tta_mirroring:
        env[ENV_MIRRORING] = "0"
    return env


def training_knobs_env(args: argparse.Namespace) -> dict[str, str]:
    """Environment carrying the checkpoint period and speed knobs to ``ReproTrainer`` (config ``training:``)."""
    from mednext.nnunet import job_settings

    env: dict[str, str] = {}
    minutes = getattr(args, "checkpoint_minutes", None)
    if minutes is not None:
        if not minutes > 0:
            raise SystemExit(f"train: --checkpoint-minutes must be positive, got {minutes}")
        env[job_settings.ENV_CHECKPOINT_MINUTES] = str(minutes)
    if getattr(args, "gradient_checkpointing", None):
        env[job_settings.ENV_GRADIENT_CHECKPOINTING] = args.gradient_checkpointing
    if getattr(args, "autocast_dtype", None):
        env[job_settings.ENV_AUTOCAST_DTYPE] = args.autocast_dtype
    if getattr(args, "channels_last", False):
        env[job_settings.ENV_CHANNELS_LAST] = "1"
    return env


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from mednext.nnunet.runner import train
    from mednext.nnunet.job_settings import Schedule

    schedule = Schedule.from_env()
    overrides = {k: v for k, v in {"epochs": args.epochs, "iters": args.iters, "val_iters": args.val_iters,
                                   "save_every": args.save_every}.items() if v is not None}
    bad = {k: v for k, v in overrides.items() if v < 1}
    if bad:
        raise SystemExit(f"train: {bad} must be positive integers")
    extra_env = {**nnunet_process_env(args.workers, tta_mirroring=not args.no_tta_mirroring), **training_knobs_env(args)}
    spec, schedule = run_spec(args), replace(schedule, **overrides)
    try:
        with _provenance(spec, args, schedule, extra_env) as outcome:  # fold_dir/provenance.json (issue 13)
            action = train(spec, device=args.device, schedule=schedule, extra_env=extra_env, compile_network=args.compile)
            outcome["action"] = action.value
    except subprocess.CalledProcessError as error:
        stopped = _stop_signal_name(error.returncode)
        if stopped is None:
            raise
        # issue 11: the trainer saved checkpoint_latest on the signal; non-zero so that Snakemake retries
        log.warning("train %s fold %s: stopped by %s after saving checkpoint_latest; a rerun resumes from it",
                    args.network, args.fold, stopped)
        return error.returncode
    log.info("train %s fold %s: %s", args.network, args.fold, action.value)
    return 0


def _stop_signal_name(returncode: int) -> str | None:
    """SIGTERM/SIGUSR1 if ``returncode`` is the trainer's exit after a signal save (128 + signal)."""
    from mednext.nnunet.job_settings import STOP_SIGNALS

    return next((s.name for s in STOP_SIGNALS if returncode == 128 + int(s)), None)


def _provenance(spec, args: argparse.Namespace, schedule, extra_env: dict[str, str]):  # -> context manager
    """Provenance of this run: its identity and the resolved values it received."""
    from dataclasses import asdict

    from mednext.nnunet.runner import decide_action
    from mednext.provenance import training_provenance

    fold_dir = spec.fold_dir()
    identity = {"dataset_id": spec.dataset_id, "network": spec.network, "fold": spec.fold,
                "trainer": spec.spec.trainer_name, "plans": spec.plans, "configuration": spec.config}
    job = {"device": args.device, **asdict(schedule), "workers": args.workers, "tta_mirroring": not args.no_tta_mirroring,
           "compile": getattr(args, "compile", None), "process_env": dict(extra_env)}
    return training_provenance(fold_dir, decide_action(fold_dir).value, identity, job)
