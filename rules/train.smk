# Training: one job per run. Checkpoints every epoch; a killed job resumes from the last one.


rule train:
    input:
        unpack(train_inputs),
    output:
        model=f"{OUT}/runs/{{run}}/model.pt",
        log=f"{OUT}/runs/{{run}}/train_log.csv",
    log:
        f"{LOGS}/train/{{run}}.log",
    benchmark:
        f"{LOGS}/benchmarks/train/{{run}}.tsv"
    priority: 1  # the long trainings first: they head the longest chains of the DAG
    conda:
        "../envs/oodflow.yaml"
    threads: TORCH_THREADS
    resources:
        gpu=1,
        runtime=run_resource("runtime"),
        mem_mb=run_resource("mem_mb"),
        cpus_per_task=run_resource("cpus_per_task"),
    params:
        run=run_params,
        checkpoint=resume_checkpoint,
    script:
        "../scripts/train.py"
