# Score each fold's validation predictions (written by nnU-Net at the end of training, at original
# spacing) with DSC, surface Dice, HD95, checking every DSC against nnU-Net's own validation/summary.json
# (mednext.evaluation.nnunet_agreement); then summarise per fold and across folds.


rule evaluate:
    input:
        checkpoint=lambda wc: LAYOUT.checkpoint(Run(wc.dataset, wc.network, int(wc.fold))),
        splits=lambda wc: LAYOUT.splits_json(wc.dataset),
    output:
        LAYOUT.metrics_pattern(),
    log:
        f"{LOGS}/evaluate/{{dataset}}/{{network}}/fold_{{fold}}.log",
    params:
        predictions=lambda wc: LAYOUT.validation_folder(Run(wc.dataset, wc.network, int(wc.fold))),
        fold_dir=lambda wc: os.path.dirname(LAYOUT.checkpoint(Run(wc.dataset, wc.network, int(wc.fold)))),
        ground_truth=lambda wc: LAYOUT.ground_truth_folder(wc.dataset),
        regions=lambda wc: " ".join(targets.evaluation_region_args(wc.dataset)),
        # plain strings: a reordered config must not look like changed parameters (and redo every evaluation)
        spacing_modes=" ".join(config["evaluation"]["spacing_modes"]),
        tolerance_mm=config["evaluation"]["tolerance_mm"],
    threads: config["evaluation"]["workers"]
    resources:  # calibrated by a rehearsal when its file exists (mednext.workflow.resources.evaluate_request)
        runtime=lambda wc, attempt: res.evaluate_request(wc.dataset, config).runtime_min * attempt,
        mem_mb=lambda wc: res.evaluate_request(wc.dataset, config).mem_mb,
    shell:
        "{JOB_ENV} {PY} evaluate --gt {params.ground_truth} --pred {params.predictions} --splits {input.splits} --out {output}"
        " --fold-dir {params.fold_dir} --nnunet-summary {params.predictions}/summary.json"
        " --dataset {wildcards.dataset} --network {wildcards.network} --fold {wildcards.fold} {params.regions}"
        " --spacing-modes {params.spacing_modes} --tolerance {params.tolerance_mm}"
        " --workers {threads} > {log} 2>&1"


rule summarize:
    input:
        targets.all_metrics(config),
    output:
        per_fold=f"{LAYOUT.results}/summary/summary_per_fold.csv",
        cross_fold=f"{LAYOUT.results}/summary/summary_cross_fold.csv",
    log:
        f"{LOGS}/summarize.log",
    localrule: True
    shell:
        "{PY} summarize {input} --out-dir {LAYOUT.results}/summary > {log} 2>&1"
