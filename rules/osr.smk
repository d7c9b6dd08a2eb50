# Open-set recognition (issue 8; docs/osr.md): DIAS against softmax and ARPL on the published splits.
# Config section `osr` (absent: off). One job per (split family, dataset, trial) builds the data and
# one per method trains and evaluates it, so a cluster runs them all in parallel.


rule osr_data:
    input:
        unpack(osr_data_inputs),
    output:
        npz=f"{OSR_BENCH}/data.npz",
        sidecar=f"{OSR_BENCH}/data.json",
    log:
        f"{OSR_LOGS}/{{family}}/{{osr_ds}}/trial{{trial}}/data.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    params:
        data=osr_data_params,
    script:
        "../scripts/osr_data.py"


# Checkpoints every epoch (not a declared output, so a killed job keeps it and resumes).
rule osr_train:
    input:
        data=f"{OSR_BENCH}/data.npz",
    output:
        model=f"{OSR_BENCH}/{{osr_method}}/model.pt",
    log:
        f"{OSR_LOGS}/{{family}}/{{osr_ds}}/trial{{trial}}/{{osr_method}}/train.log",
    benchmark:
        f"{OSR_LOGS}/benchmarks/{{family}}/{{osr_ds}}/trial{{trial}}/{{osr_method}}_train.tsv"
    priority: 1  # the long trainings first: they head the longest chains of the DAG
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    resources:
        gpu=1,
        runtime=osr_resource("runtime"),
        mem_mb=osr_resource("mem_mb"),
        cpus_per_task=osr_resource("cpus_per_task"),
    params:
        run=osr_run_params,
        checkpoint=f"{OSR_BENCH}/{{osr_method}}/checkpoint-last.pt",
    script:
        "../scripts/osr_train.py"


rule osr_eval:
    input:
        model=f"{OSR_BENCH}/{{osr_method}}/model.pt",
        data=f"{OSR_BENCH}/data.npz",
    output:
        cache=f"{OSR_BENCH}/{{osr_method}}/cache.npz",
        eval=f"{OSR_BENCH}/{{osr_method}}/eval.json",
        oscr=f"{OSR_BENCH}/{{osr_method}}/oscr.npz",
    log:
        f"{OSR_LOGS}/{{family}}/{{osr_ds}}/trial{{trial}}/{{osr_method}}/eval.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    resources:
        gpu=1,
        runtime=osr_resource("runtime", "eval"),
        mem_mb=osr_resource("mem_mb", "eval"),
        cpus_per_task=osr_resource("cpus_per_task", "eval"),
    params:
        evaluation=lambda wildcards: canonical(osr_workflow.eval_config(config)),
    script:
        "../scripts/osr_eval.py"


rule osr_report:
    input:
        unpack(osr_report_inputs),
    output:
        tables=expand(
            f"{OSR_OUT}/tables/{{table}}.{{ext}}",
            table=OSR_TABLES,
            ext=["md", "tex", "csv"],
        ),
        metrics=f"{OSR_OUT}/tables/metrics.csv",
        html=[table_page(OSR_NAME, t, CAT_DIAS) for t in OSR_TABLES],
        figure=report(
            f"{OSR_OUT}/figures/oscr_curves.png",
            caption="../report/osr.rst",
            category=CAT_DIAS,
        ),
    log:
        f"{OSR_LOGS}/report.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    params:
        plots=canonical(config["plots"]),
    script:
        "../scripts/osr_report.py"
