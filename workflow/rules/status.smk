# Where every training of the grid stands (mednext-repro status, which also runs on its own while the
# grid trains): status.csv and the dataset x network picture, for the report. Built after the
# evaluations, it records each training's hours against the estimate and its measured epoch time.


rule grid_status:
    input:
        targets.all_metrics(config),
    output:
        csv=report(f"{LAYOUT.tables}/status.csv", category="Status"),
        picture=report(f"{LAYOUT.tables}/grid_status.png", category="Status"),
    log:
        f"{LOGS}/tables/grid_status.log",
    localrule: True
    shell:
        "{PY} status --config-json {CONFIG_JSON:q} --workdir . --no-squeue --csv {output.csv}"
        " --picture {output.picture} > {log} 2>&1"
