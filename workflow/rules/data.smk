# Dataset download and conversion to nnU-Net raw (the synthetic set is generated instead).


rule prepare_dataset:
    output:
        LAYOUT.raw_pattern(),
    log:
        f"{LOGS}/data/{{dataset_folder}}.log",
    params:
        key=dataset_key,
    resources:
        runtime=lambda wc, attempt: RES["data_runtime_min"] * attempt,
        mem_mb=RES["data_mem_mb"],
    shell:
        "{PY} data prepare {params.key} --downloads {LAYOUT.downloads} --raw-root {LAYOUT.raw} > {log} 2>&1"
