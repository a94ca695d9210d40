# Config validation, the two registries and the file layout, shared by every rule file.
import os
import sys

from snakemake.utils import validate

from mednext.data.registry import get_dataset
from mednext.networks import get_network
from mednext.workflow import targets
from mednext.workflow.grid import Run, all_runs, check_config, configurations_for, datasets_of, parent_run
from mednext.workflow.layout import TABLE_FORMATS, Layout, run_from_checkpoint_wildcards
from mednext.workflow import resources as res
from mednext.provenance import config_env
from mednext.workflow.config_source import select_config, training_knob_args

# One complete source per run: the single --configfile (the slurm profile's config/paper.yaml) or the
# demo config; keys it omits get the schema's defaults, never another file's values (issue 11).
_selected = select_config(workflow.overwrite_configfiles or [], config, os.path.join(workflow.basedir, "config", "demo.yaml"))
config.clear()
config.update(_selected)
validate(config, schema="../schemas/config.schema.yaml", set_default=True)
check_config(config, "workflow config")

LAYOUT = Layout.from_config(config)
RES = res.merged_resources(config)
# The reported numbers ship with the workflow: a relative path is relative to the Snakefile.
REPORTED = config["reported"] if os.path.isabs(config["reported"]) else os.path.join(workflow.basedir, config["reported"])
PY = f'"{sys.executable}" -m mednext'
LOGS = LAYOUT.logs
# nnU-Net reads its folders from the environment; jobs (local or sbatch --export=ALL) inherit it.
os.environ.update(LAYOUT.nnunet_env())
# Jobs record which config ran them in their provenance.json (mednext.provenance, issue 13).
os.environ.update(config_env(config, (workflow.overwrite_configfiles or [os.path.join(workflow.basedir, "config", "demo.yaml")])[0]))

wildcard_constraints:
    dataset_folder=r"Dataset\d{3}_\w+",
    trainer=r"nnUNetTrainer\w*",
    configuration=r"3d_fullres|2d",
    fold=r"\d+",


def dataset_key(wildcards):
    return targets.dataset_key_of_folder(wildcards.dataset_folder)


def train_run(wildcards):
    return run_from_checkpoint_wildcards(wildcards.dataset_folder, wildcards.trainer, wildcards.fold)
