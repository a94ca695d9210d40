# One nnU-Net v2 training per dataset x network x fold. Kernel-5 MedNeXt (and the "trained twice"
# ablation) waits for the same dataset and fold's parent checkpoint and starts from it by UpKern.
# An interrupted training resumes from checkpoint_latest.pth when the job is rerun or retried. The command
# builds its settings from the config (CONFIG_JSON), which is deliberately not a params value: a changed
# setting does not mark a finished training for a re-run (Snakemake would delete checkpoint_final.pth).


rule train:
    input:
        # ancient: a training needs its plans and splits to exist, not to be older than it. A re-plan (new
        # dataset files, another network's configuration added) must not make Snakemake redo, and first
        # delete, weeks of finished trainings; retrain on purpose with --forcerun train or by deleting them.
        plans=lambda wc: ancient(LAYOUT.plans_json(train_run(wc).dataset)),
        splits=lambda wc: ancient(LAYOUT.splits_json(train_run(wc).dataset)),
        parent=lambda wc: targets.parent_checkpoints(train_run(wc), config),
    output:
        LAYOUT.checkpoint_pattern(),
    log:
        LAYOUT.train_log_pattern(),
    params:
        run=train_run,
    threads: 1 if config["device"] == "cpu" else RES["cpus_per_gpu"]
    priority: lambda wc: scheduling_priority(train_run(wc), UPKERN_PARENTS)
    resources:
        gpu=1 if config["device"] == "cuda" else 0,
        cpus_per_gpu=RES["cpus_per_gpu"] if config["device"] == "cuda" else 0,
        runtime=lambda wc, attempt: res.train_runtime_minutes(train_run(wc).network, config, attempt),
        mem_mb=lambda wc: res.train_mem_mb(train_run(wc).network, config),
    shell:
        "{JOB_ENV} {PY} train --dataset {wildcards.dataset_folder} --network {params.run.network} --fold {wildcards.fold}"
        " --plans-name {config[plans]} --configuration {wildcards.configuration} --device {config[device]}"
        " --config-json {CONFIG_JSON:q} --workers {threads} >> {log} 2>&1"
