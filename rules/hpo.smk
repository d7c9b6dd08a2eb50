# Hyper-parameter search (Optuna) of the runs with an hpo block; their train job uses best.json.
# The study itself (study.db, or hpo.storage) is not an output: it survives failures and kills, and
# a rerun (e.g. after raising hpo.n_trials) resumes it.


rule hpo:
    input:
        unpack(hpo_inputs),
    output:
        best=f"{OUT}/hpo/{{run}}/best.json",
        trials=f"{OUT}/hpo/{{run}}/trials.csv",
        holdout=f"{OUT}/hpo/{{run}}/holdout.npz",
        history=report(
            f"{OUT}/figures/hpo/{{run}}_history.png",
            caption="../report/hpo.rst",
            category=CAT_FOOD,
            subcategory="{run}",
        ),
        importance=report(
            f"{OUT}/figures/hpo/{{run}}_importance.png",
            caption="../report/hpo.rst",
            category=CAT_FOOD,
            subcategory="{run}",
        ),
    log:
        f"{LOGS}/hpo/{{run}}.log",
    benchmark:
        f"{LOGS}/benchmarks/hpo/{{run}}.tsv"
    wildcard_constraints:
        run="|".join(HPO_RUNS) or "(?!)",
    priority: 1  # the long trainings first: they head the longest chains of the DAG
    conda:
        "../envs/oodflow.yaml"
    threads: TORCH_THREADS
    resources:
        gpu=1,
        runtime=run_resource("runtime", "hpo"),
        mem_mb=run_resource("mem_mb", "hpo"),
        cpus_per_task=run_resource("cpus_per_task", "hpo"),
    params:
        run=run_params,
        plots=canonical(config["plots"]),
        study_db=hpo_study_db,
        checkpoint=hpo_checkpoint,
    script:
        "../scripts/hpo.py"
