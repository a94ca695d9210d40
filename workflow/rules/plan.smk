# nnU-Net v2 planning at 1 mm isotropic with the paper's patches, preprocessing, and fixed 5-fold splits.


rule plan_and_preprocess:
    input:
        LAYOUT.raw_pattern(),
    output:
        plans=LAYOUT.plans_pattern(),
        splits=LAYOUT.splits_pattern(),
    log:
        f"{LOGS}/plan/{{dataset_folder}}.log",
    params:
        configurations=lambda wc: " ".join(configurations_for(config, dataset_key(wc))),
        planning=config["planning"],
    threads: config["planning"]["processes"]
    resources:
        runtime=lambda wc, attempt: RES["data_runtime_min"] * attempt,
        mem_mb=RES["data_mem_mb"],
    shell:
        "({PY} plan --dataset {wildcards.dataset_folder} --plans-name {config[plans]}"
        " --patch-size {params.planning[patch_3d]} --patch-size-2d {params.planning[patch_2d]}"
        " --batch-size {params.planning[batch_3d]} --batch-size-2d {params.planning[batch_2d]}"
        " --configurations {params.configurations} --num-processes {threads}"
        " && {PY} data splits --dataset {wildcards.dataset_folder}) > {log} 2>&1"
