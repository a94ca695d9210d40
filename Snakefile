# MedNeXt reproduction (Roy et al., MICCAI 2023): data -> 1 mm plans -> 5-fold training (UpKern for
# kernel 5) -> evaluation -> the paper's tables, reproduced beside reported.
#   demo (default config, CPU):  snakemake --cores 2 all_tables
#   paper grid on SLURM:         snakemake --profile slurm all_tables
#   rehearsal before it:         snakemake --profile slurm rehearse
# Rules only wire; the logic is in mednext/ (mednext.workflow, the CLI) and is tested there.

from snakemake.utils import min_version

min_version("9.0")

# No configfile: directive (Snakemake would merge it under the profile's config): common.smk takes the
# one --configfile given, or config/demo.yaml when none is (mednext.workflow.config_source).

include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/plan.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/status.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/rehearse.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        rules.all_tables.input,
