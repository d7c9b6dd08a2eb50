# Scores by name. Post-hoc scores read the feature cache, all of a run's in one job (each cache is
# read once, and the process start-up is paid once); network scores (ODIN, CORES) re-run the model,
# one job per (run, score).

if POSTHOC_SCORES:

    rule posthoc_scores:
        input:
            unpack(posthoc_inputs),
        output:
            expand(f"{OUT}/scores/{{{{run}}}}/{{score}}.npz", score=POSTHOC_SCORES),
        log:
            f"{LOGS}/scores/{{run}}/posthoc.log",
        benchmark:
            f"{LOGS}/benchmarks/scores/{{run}}/posthoc.tsv"
        conda:
            "../envs/oodflow.yaml"
        threads: 1
        params:
            scores=posthoc_params,
            names=POSTHOC_SCORES,
        script:
            "../scripts/posthoc_scores.py"


if NETWORK_SCORE_NAMES:

    rule score:
        input:
            unpack(network_score_inputs),
        output:
            f"{OUT}/scores/{{run}}/{{score}}.npz",
        log:
            f"{LOGS}/scores/{{run}}/{{score}}.log",
        benchmark:
            f"{LOGS}/benchmarks/scores/{{run}}/{{score}}.tsv"
        wildcard_constraints:
            score="|".join(NETWORK_SCORE_NAMES),
        conda:
            "../envs/oodflow.yaml"
        threads: 1
        resources:
            gpu=1,
            runtime=eval_resource("runtime"),
            mem_mb=eval_resource("mem_mb"),
            cpus_per_task=eval_resource("cpus_per_task"),
        params:
            score=score_params,
        script:
            "../scripts/score.py"
