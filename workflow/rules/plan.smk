# nnU-Net v2 planning at 1 mm isotropic with the paper's patches and preprocessing; fixed 5-fold splits.


rule plan_and_preprocess:
    input:
        LAYOUT.raw_pattern(),
    output:
        LAYOUT.plans_pattern(),
    log:
        f"{LOGS}/plan/{{dataset_folder}}.log",
    params:
        # what decides the plans, as plain strings (a reordered config must not look changed); not the worker
        # count, which is threads: a re-plan would make Snakemake redo every training downstream
        configurations=lambda wc: " ".join(configurations_for(config, dataset_key(wc))),
        patch_3d=" ".join(map(str, config["planning"]["patch_3d"])),
        patch_2d=" ".join(map(str, config["planning"]["patch_2d"])),
        batch_3d=config["planning"]["batch_3d"],
        batch_2d=config["planning"]["batch_2d"],
    # planning.processes workers at most: as many as fit the memory request at one worker's peak
    # (measured by a rehearsal, or the uncalibrated default; mednext.workflow.resources.plan_request)
    threads: lambda wc: res.plan_request(dataset_key(wc), config).cpus
    resources:
        runtime=lambda wc, attempt: res.plan_request(dataset_key(wc), config).runtime_min * attempt,
        mem_mb=lambda wc: res.plan_request(dataset_key(wc), config).mem_mb,
    shell:
        "{JOB_ENV} {PY} plan --dataset {wildcards.dataset_folder} --plans-name {config[plans]}"
        " --patch-size {params.patch_3d} --patch-size-2d {params.patch_2d}"
        " --batch-size {params.batch_3d} --batch-size-2d {params.batch_2d}"
        " --configurations {params.configurations} --num-processes {threads} > {log} 2>&1"


rule write_splits:
    # nnU-Net's 5-fold split of the training cases (KFold, shuffle, seed 12345), fixed before any training.
    input:
        raw=LAYOUT.raw_pattern(),
        plans=LAYOUT.plans_pattern(),  # preprocessing creates the folder the splits go into
    output:
        LAYOUT.splits_pattern(),
    log:
        f"{LOGS}/splits/{{dataset_folder}}.log",
    params:
        raw=LAYOUT.raw,
        preprocessed=LAYOUT.preprocessed,
    localrule: True
    shell:
        "{PY} data splits --dataset {wildcards.dataset_folder} --raw-root {params.raw:q}"
        " --preprocessed-root {params.preprocessed:q} > {log:q} 2>&1"
