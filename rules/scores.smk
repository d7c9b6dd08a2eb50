# Scores by name. Post-hoc scores read the feature cache; network scores (ODIN) re-run the model.


rule score:
    input:
        unpack(score_inputs),
    output:
        f"{OUT}/scores/{{run}}/{{score}}.npz",
    params:
        score=score_params,
    log:
        f"{LOGS}/scores/{{run}}/{{score}}.log",
    benchmark:
        f"{LOGS}/benchmarks/scores/{{run}}/{{score}}.tsv"
    threads: 1
    resources:
        gpu=score_gpus,
    conda:
        "../envs/oodflow.yaml"
    script:
        "../scripts/score.py"
