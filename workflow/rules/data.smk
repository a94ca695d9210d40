# Dataset download and conversion to nnU-Net raw (the synthetic set is generated instead, a config's own
# nnU-Net raw folder linked).


rule prepare_dataset:
    output:
        LAYOUT.raw_pattern(),
    log:
        f"{LOGS}/data/{{dataset_folder}}.log",
    params:
        args=lambda wc: targets.prepare_dataset_args(dataset_key(wc), LAYOUT),  # download+convert, or link your own
    resources:  # calibrated by a rehearsal when its file exists (mednext.workflow.resources.prepare_request)
        runtime=lambda wc, attempt: res.prepare_request(dataset_key(wc), config).runtime_min * attempt,
        mem_mb=lambda wc: res.prepare_request(dataset_key(wc), config).mem_mb,
    shell:
        "{PY} data {params.args} > {log} 2>&1"
