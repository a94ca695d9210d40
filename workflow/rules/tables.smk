# The paper's tables, reproduced beside reported (CSV, Markdown, LaTeX), the overview plot, and the
# named targets: all_tables, one per table, one per ablation.


rule table1_configs:
    input:
        f"{REPORTED}/table1_configs.csv",
    output:
        multiext(f"{LAYOUT.tables}/table1_configs", ".csv", ".md"),
    log:
        f"{LOGS}/tables/table1_configs.log",
    localrule: True
    shell:
        "{PY} table1 --reported {input} --out-dir {LAYOUT.tables} > {log} 2>&1"


rule provenance_table:
    # One row per (dataset, network, fold) behind the tables: commit, config, packages, GPU, epochs,
    # resumes; a table row's provenance_key names its folds' rows.
    input:
        targets.all_metrics(config),
    output:
        report(f"{LAYOUT.tables}/provenance.csv", category="Provenance"),
    log:
        f"{LOGS}/tables/provenance_table.log",
    localrule: True
    shell:
        "{PY} provenance {input} --out {output} > {log} 2>&1"


rule results_tables:
    # From the per-case metrics: pooled CV mean, bootstrap CI and fold spread per cell,
    # datasets outside the paper in their own table, paired comparisons (significance.*).
    # Each table as CSV (numbers), Markdown, LaTeX and HTML (shown inline in the report).
    input:
        metrics=targets.all_metrics(config),
        reported=expand(f"{REPORTED}/{{name}}.csv", name=["table2", "table1_ablations", "test_set"]),
        provenance=rules.provenance_table.output[0],
    output:
        report(multiext(f"{LAYOUT.tables}/table2", ".html", ".csv"), category="Tables"),
        multiext(f"{LAYOUT.tables}/table2", ".md", ".tex"),
        report(multiext(f"{LAYOUT.tables}/table1_ablations", ".html", ".csv"), category="Tables"),
        multiext(f"{LAYOUT.tables}/table1_ablations", ".md", ".tex"),
        multiext(f"{LAYOUT.tables}/test_set", ".csv", ".md", ".tex", ".html"),
        report(multiext(f"{LAYOUT.tables}/results_other_datasets", ".html", ".csv"), category="Tables"),
        multiext(f"{LAYOUT.tables}/results_other_datasets", ".md", ".tex"),
        report(multiext(f"{LAYOUT.tables}/significance", ".html", ".csv"), category="Tables"),
        multiext(f"{LAYOUT.tables}/significance", ".md", ".tex"),
        report(f"{LAYOUT.tables}/significance.png", category="Plots"),
        report(f"{LAYOUT.tables}/reproduced_vs_reported.png", category="Plots"),
    log:
        f"{LOGS}/tables/results_tables.log",
    params:
        n_folds=len(config["folds"]),
    localrule: True
    shell:
        "{PY} tables {input.metrics} --reported {REPORTED} --out-dir {LAYOUT.tables}"
        " --spacing-mode {config[tables][spacing_mode]} --folds {params.n_folds}"
        " --provenance {input.provenance} > {log} 2>&1"


rule figures:
    # What the runs did: training curves from nnU-Net's checkpoint log, DSC per class, and each UpKern
    # k5 run's first-epoch loss beside its k3 parent's (mednext.tables.run_figures).
    input:
        checkpoints=[LAYOUT.checkpoint(run) for run in all_runs(config)],
        metrics=targets.all_metrics(config),
    output:
        report(f"{LAYOUT.tables}/training_curves.png", category="Plots"),
        report(f"{LAYOUT.tables}/per_class_dsc.png", category="Plots"),
        report(f"{LAYOUT.tables}/upkern_first_epoch.png", category="Plots"),
    log:
        f"{LOGS}/tables/figures.log",
    params:
        runs=" ".join(f"--run {r.dataset} {r.network} {r.fold} {LAYOUT.checkpoint(r)}" for r in all_runs(config)),
    localrule: True
    shell:
        "{PY} figures {params.runs} --metrics {input.metrics} --out-dir {LAYOUT.tables} > {log} 2>&1"


rule table2:
    input:
        multiext(f"{LAYOUT.tables}/table2", ".csv", ".md", ".tex", ".html"),


rule table1_ablations:
    input:
        multiext(f"{LAYOUT.tables}/table1_ablations", ".csv", ".md", ".tex", ".html"),


rule all_tables:
    input:
        rules.table1_configs.output,
        rules.results_tables.output,
        rules.summarize.output,  # per-fold and cross-fold summaries for users (the tables read the cases)
        rules.provenance_table.output,
        rules.figures.output,
        rules.grid_status.output,
        # Named here too so a deleted fold's metrics are rescored: Snakemake (>= 7.7) does not
        # regenerate a missing intermediate file while everything downstream of it is up to date.
        targets.all_metrics(config),


# One target per entry of mednext.ablations.ABLATIONS (ablation_resampling, ablation_upkern, ...): the
# ablation network and the network it is compared with, on the ablation datasets.
for _ablation_target in targets.ablation_targets():

    rule:
        name:
            _ablation_target
        input:
            targets.ablation_metrics(config, _ablation_target),
        localrule: True
