# Scores by name. Post-hoc scores read the feature cache; network scores (ODIN) re-run the model.


rule score:
    input:
        unpack(score_inputs),
    output:
        f"{OUT}/scores/{{run}}/{{score}}.npz",
    log:
        f"{LOGS}/scores/{{run}}/{{score}}.log",
    benchmark:
        f"{LOGS}/benchmarks/scores/{{run}}/{{score}}.tsv"
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    resources:
        gpu=score_gpus,
    params:
        score=score_params,
    script:
        "../scripts/score.py"
