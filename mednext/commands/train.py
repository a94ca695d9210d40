"""``train``: one (dataset, network, fold) with stock ``nnUNetv2_train``; reruns resume (§3.1).

The run's settings are the workflow config's ``training:`` section (``--config FILE``, or
``--config-json`` as the workflow passes its resolved config), each ``--set KEY=VALUE`` applied on top;
keys not given take the schema's defaults, the paper's protocol. From them, the dataset's registry key
and the config's GPU calibration, the command builds one
:class:`~mednext.nnunet.job_settings.TrainingJob`, which the training process reads once.
The config travels on the command line, not as a Snakemake ``params`` value: a changed setting must
never make Snakemake re-run (and so delete) a finished training.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
from collections.abc import Mapping
from typing import Any

from mednext.commands import add_config_arguments, add_dataset_argument, config_of, registry_key
from mednext.nnunet.paths import DEFAULT_PLANS

log = logging.getLogger(__name__)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments naming one run: dataset, network, fold, plans, configuration, device."""
    add_dataset_argument(parser)
    parser.add_argument("--network", required=True, help="registry name, e.g. MedNeXt-B_k5 (mednext.networks)")
    parser.add_argument("--fold", required=True, help="fold 0-4 or 'all'")
    parser.add_argument("--plans-name", default=DEFAULT_PLANS, help=f"plans identifier (default {DEFAULT_PLANS})")
    parser.add_argument("--configuration", default=None, help="nnU-Net configuration (default: the network's)")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu", "mps"), help="default cuda")


def run_of(args: argparse.Namespace):  # -> mednext.runs.Run
    """The :class:`~mednext.runs.Run` the arguments name; the dataset by its registry key when it has one."""
    from mednext.commands import dataset_label
    from mednext.runs import Run

    return Run(dataset_label(args.dataset), args.network, args.fold if args.fold == "all" else int(args.fold))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train one fold of one network (resumes an interrupted run)")
    add_run_arguments(parser)
    add_config_arguments(parser, None, "its training: section, own datasets and calibration (default: the schema's "
                                       "defaults, the paper's protocol)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="one training: key (YAML value), e.g. --set epochs=5 --set tta_mirroring=false; "
                             "keys and defaults: workflow/schemas/config.schema.yaml")
    parser.add_argument("--workers", type=int,
                        help="the CPUs the job holds: nnU-Net's augmentation and export processes (nnUNet_n_proc_DA, "
                             "nnUNet_def_n_proc) and, on the CPU, torch's threads; default: nnU-Net's own (every core)")
    parser.add_argument("--print-job", action="store_true",
                        help="print the job the training process would receive (JSON) and exit without training")
    parser.set_defaults(func=run)


def build_job(config: Mapping[str, Any] | None, overrides: list[str], dataset: str, network: str,
              workers: int | None = None):  # -> TrainingJob
    """The :class:`~mednext.nnunet.job_settings.TrainingJob` of ``network`` on ``dataset`` (key, id or
    folder name) under ``config`` (None: the schema's defaults), with each ``--set KEY=VALUE`` applied to
    its ``training:`` section (values read as YAML). SystemExit names a bad key or value.
    """
    import yaml

    from mednext.config_schema import ConfigValueError
    from mednext.nnunet.job_settings import TrainingJob, TrainingSettings
    from mednext.workflow.resources import gpu_rehearsal_record

    if workers is not None and workers < 1:
        raise SystemExit(f"train: --workers must be a positive integer, got {workers}")
    training = dict((config or {}).get("training") or {})
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"train: --set expects KEY=VALUE, found {item!r}")
        training[key.strip()] = yaml.safe_load(text)
    try:
        settings = TrainingSettings.from_config(training, "--config/--set")
    except ConfigValueError as error:
        raise SystemExit(f"train: {error}") from None
    gpu = None if config is None else gpu_rehearsal_record(network, config)
    return TrainingJob(settings, registry_key(dataset), workers, gpu_rehearsal=gpu)


def run(args: argparse.Namespace) -> int:
    from mednext.nnunet.divergence import DIVERGED_EXIT_CODE, DivergedRunError, marker_path
    from mednext.nnunet.runner import fold_dir, refuse_if_diverged, train

    config, _ = config_of(args)  # registers the config's own datasets: their keys resolve below
    job, run_ = build_job(config, args.overrides, args.dataset, args.network, args.workers), run_of(args)
    if args.print_job:
        print(job.to_json())
        return 0
    folder = fold_dir(run_, args.plans_name, args.configuration)
    try:
        refuse_if_diverged(folder, job.settings.retry_diverged)  # before provenance: a refused attempt is no run
        with _provenance(run_, args, job) as outcome:  # fold_dir/provenance.json
            action = train(run_, job, args.plans_name, args.configuration, device=args.device)
            outcome["action"] = action.value
    except DivergedRunError as error:
        log.error("train %s fold %s: %s", args.network, args.fold, error)
        return DIVERGED_EXIT_CODE
    except subprocess.CalledProcessError as error:
        if error.returncode == DIVERGED_EXIT_CODE:
            log.error("train %s fold %s: stopped by the divergence guard: %s (%s)", args.network, args.fold,
                      _describe_marker(folder), marker_path(folder))
            return DIVERGED_EXIT_CODE
        stopped = _stop_signal_name(error.returncode)
        if stopped is None:
            raise
        # the trainer saved checkpoint_latest on the signal; non-zero so that Snakemake retries
        log.warning("train %s fold %s: stopped by %s after saving checkpoint_latest; a rerun resumes from it",
                    args.network, args.fold, stopped)
        return error.returncode
    log.info("train %s fold %s: %s", args.network, args.fold, action.value)
    return 0


def _describe_marker(folder) -> str:
    """The divergence marker's one-line account (or why it cannot be read)."""
    from mednext.nnunet.divergence import DivergenceMarkerError, read_marker

    try:
        divergence = read_marker(folder)
    except DivergenceMarkerError as error:
        return str(error)
    return "no marker written" if divergence is None else divergence.describe()


def _stop_signal_name(returncode: int) -> str | None:
    """SIGTERM/SIGUSR1 if ``returncode`` is the trainer's exit after a signal save (128 + signal)."""
    from mednext.nnunet.job_settings import STOP_SIGNALS

    return next((s.name for s in STOP_SIGNALS if returncode == 128 + int(s)), None)


def _provenance(run_, args: argparse.Namespace, job):  # -> context manager
    """Provenance of this run: its identity and the resolved values it received."""
    from mednext.networks import get_network
    from mednext.nnunet.paths import nnunet_id
    from mednext.nnunet.runner import decide_action, fold_dir, nnunet_job_env
    from mednext.provenance import training_provenance

    spec = get_network(run_.network)
    folder = fold_dir(run_, args.plans_name, args.configuration)
    identity = {"dataset": run_.dataset, "dataset_id": nnunet_id(run_.dataset), "network": run_.network,
                "fold": run_.fold, "trainer": spec.trainer_name, "plans": args.plans_name,
                "configuration": args.configuration or spec.configuration}
    process_env = {k: v for k, v in nnunet_job_env(job).items() if k.startswith("nnUNet_")}
    record = {"device": args.device, "workers": args.workers, **job.settings.as_dict(), "process_env": process_env,
              "gpu_rehearsal": job.gpu_rehearsal}  # the figures gradient_checkpointing auto decided from
    return training_provenance(folder, decide_action(folder).value, identity, record)
