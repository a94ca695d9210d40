# Config validation, the two registries and the file layout, shared by every rule file.
import json
import os
import sys

from snakemake.utils import validate

from mednext.workflow import targets
from mednext.workflow.grid import Run, all_runs, check_config, configurations_for, scheduling_priority, upkern_parents
from mednext.workflow.layout import Layout, dataset_of_folder, run_from_checkpoint_wildcards
from mednext.workflow import resources as res
from mednext.workflow.config_source import select_config
from mednext.workflow.job_env import env_prefix, job_env
from mednext.nnunet.job_settings import TrainingSettings

# One complete source per run: the single --configfile (the slurm profile's config/paper.yaml) or the
# demo config; keys it omits get the schema's defaults, never another file's values.
_selected = select_config(workflow.overwrite_configfiles or [], config, os.path.join(workflow.basedir, "config", "demo.yaml"))
config.clear()
config.update(_selected)
validate(config, schema="../schemas/config.schema.yaml", set_default=True)
check_config(config, "workflow config")
TrainingSettings.from_config(config["training"], "workflow config")  # a bad training: key fails the parse, not a job

LAYOUT = Layout.from_config(config)
RES = res.merged_resources(config)
UPKERN_PARENTS = upkern_parents(config)  # train jobs these runs start from get priority (UpKern order)
# The reported numbers ship with the workflow: a relative path is relative to the Snakefile.
REPORTED = config["reported"] if os.path.isabs(config["reported"]) else os.path.join(workflow.basedir, config["reported"])
PY = f'"{sys.executable}" -m mednext'
LOGS = LAYOUT.logs
# "env nnUNet_raw=... nnUNet_preprocessed=... nnUNet_results=... <config hashes>" before the commands that
# run nnU-Net or record provenance (mednext.workflow.job_env); a global, so no rule param changes with it.
JOB_ENV = env_prefix(job_env(config, (workflow.overwrite_configfiles or [os.path.join(workflow.basedir, "config", "demo.yaml")])[0]))
# The resolved config (schema defaults filled) for commands that read more than their own keys: train
# builds its job from it. A global, not a params value: Snakemake re-runs a job whose params changed and
# deletes its outputs first, and a finished training must never be lost to a changed setting.
CONFIG_JSON = json.dumps(config, sort_keys=True)

wildcard_constraints:
    dataset_folder=r"Dataset\d{3}_\w+",
    trainer=r"nnUNetTrainer\w*",
    configuration=r"3d_fullres|2d",
    fold=r"\d+",


def dataset_key(wildcards):
    return dataset_of_folder(wildcards.dataset_folder)


def train_run(wildcards):
    return run_from_checkpoint_wildcards(wildcards.dataset_folder, wildcards.trainer, wildcards.fold)
