# Extract once, score many: one forward pass per (run, dataset) caches logits, features and labels.


rule extract_features:
    input:
        model=f"{OUT}/runs/{{run}}/model.pt",
        data=f"{OUT}/data/{{dataset}}.npz",
    output:
        f"{OUT}/features/{{run}}/{{dataset}}.npz",
    log:
        f"{LOGS}/features/{{run}}/{{dataset}}.log",
    benchmark:
        f"{LOGS}/benchmarks/features/{{run}}/{{dataset}}.tsv"
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    resources:
        gpu=1,
    script:
        "../scripts/extract_features.py"
