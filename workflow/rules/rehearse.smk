# The rehearsal (mednext-repro rehearse, README "Rehearsal"): every stage of this config's grid on a few
# real-size cases per dataset, measured, before the paper run. One CPU job and one GPU job through the same
# profile; each adds what it measured to the report and to the calibration file (the `calibration` key),
# from which every later job's requests come. `rehearse` then prints the verdict and fails when a job of the
# DAG would not fit its request. The jobs never fail for a verdict (--no-fail): the GPU job still runs.

REHEARSAL = os.path.dirname(config["calibration"]) or "."


rule rehearse_cpu:
    output:
        touch(f"{REHEARSAL}/cpu_stages.done"),
    log:
        f"{LOGS}/rehearse/cpu.log",
    threads: res.rehearsal_cpu_request(config).cpus
    resources:
        runtime=lambda wc, attempt: res.rehearsal_cpu_request(config).runtime_min * attempt,
        mem_mb=res.rehearsal_cpu_request(config).mem_mb,
    shell:
        "{PY} rehearse --config-json {CONFIG_JSON:q} --stages cpu --max-workers {threads} --no-fail > {log} 2>&1"


rule rehearse_gpu:
    input:
        rules.rehearse_cpu.output,  # nnU-Net's own network is built from the plans the CPU stages keep
    output:
        touch(f"{REHEARSAL}/gpu_stages.done"),
    log:
        f"{LOGS}/rehearse/gpu.log",
    threads: 1 if config["device"] == "cpu" else RES["cpus_per_gpu"]
    resources:
        gpu=1 if config["device"] == "cuda" else 0,
        cpus_per_gpu=RES["cpus_per_gpu"] if config["device"] == "cuda" else 0,
        runtime=lambda wc, attempt: RES["rehearsal_gpu_runtime_min"] * attempt,
        mem_mb=RES["rehearsal_gpu_mem_mb"],
    shell:
        "{PY} rehearse --config-json {CONFIG_JSON:q} --stages gpu --device {config[device]} --no-fail > {log} 2>&1"


rule rehearse:
    input:
        rules.rehearse_cpu.output,
        rules.rehearse_gpu.output,
    log:
        f"{LOGS}/rehearse/report.log",
    localrule: True
    shell:
        "{PY} rehearse --config-json {CONFIG_JSON:q} --stages report 2>&1 | tee {log}"
