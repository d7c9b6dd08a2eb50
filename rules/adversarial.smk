# Adversarial OOD evaluation (config `adversarial`) and sweep figures (config `sweeps`).


rule adversarial_eval:
    input:
        unpack(adversarial_inputs),
    output:
        f"{OUT}/tables/adversarial/{{run}}.csv",
    log:
        f"{LOGS}/adversarial/{{run}}.log",
    benchmark:
        f"{LOGS}/benchmarks/adversarial/{{run}}.tsv"
    conda:
        "../envs/oodflow.yaml"
    threads: TORCH_THREADS
    resources:
        gpu=1,
        runtime=eval_resource("runtime"),
        mem_mb=eval_resource("mem_mb"),
        cpus_per_task=eval_resource("cpus_per_task"),
    params:
        adversarial=adversarial_params,
    script:
        "../scripts/adversarial_eval.py"


rule adversarial_report:
    input:
        expand(f"{OUT}/tables/adversarial/{{run}}.csv", run=ADV_RUNS),
    output:
        csv=f"{OUT}/tables/adversarial.csv",
        png=report(
            f"{OUT}/figures/adversarial_auroc.png",
            caption="../report/adversarial.rst",
            category=CAT_AOE,
        ),
    log:
        f"{LOGS}/report/adversarial.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    params:
        plots=canonical(config["plots"]),
    script:
        "../scripts/adversarial_report.py"


rule sweep_report:
    input:
        f"{OUT}/tables/metrics.csv",
    output:
        csv=f"{OUT}/tables/sweep_{{sweep}}.csv",
        png=report(
            f"{OUT}/figures/sweep_{{sweep}}.png",
            caption="../report/sweep.rst",
            category=CAT_AOE,
            subcategory="{sweep}",
        ),
    log:
        f"{LOGS}/report/sweep_{{sweep}}.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    params:
        sweep=sweep_params,
        plots=canonical(config["plots"]),
    script:
        "../scripts/sweep_report.py"
