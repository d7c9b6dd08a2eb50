# Extract once, score many: one forward pass per (run, dataset) caches logits, features and labels.
# One job per run covers all its sets: it loads torch and the model once (the import alone costs
# seconds per job on a CPU).


rule extract_features:
    input:
        model=f"{OUT}/runs/{{run}}/model.pt",
        data=expand(f"{OUT}/data/{{dataset}}.npz", dataset=CACHED_SETS),
    output:
        expand(f"{OUT}/features/{{{{run}}}}/{{dataset}}.npz", dataset=CACHED_SETS),
    log:
        f"{LOGS}/features/{{run}}.log",
    benchmark:
        f"{LOGS}/benchmarks/features/{{run}}.tsv"
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    resources:
        gpu=1,
        runtime=eval_resource("runtime"),
        mem_mb=eval_resource("mem_mb"),
        cpus_per_task=eval_resource("cpus_per_task"),
    params:
        eval_stats=EVAL_STATS,
    script:
        "../scripts/extract_features.py"
