# Multi-label OOD detection (EDGE, JointEnergy): its own sub-DAG, on when the config has a
# `multilabel:` section (helpers in rules/multilabel_common.smk). Outputs under
# results/<multi-label benchmark>/ (docs/multilabel.md).


if ML is not None:

    rule ml_build_id:
        input:
            unpack(lambda wc: ml_folders(ML_BENCH.source)),
        output:
            **{s: f"{ML_OUT}/data/{s}.npz" for s in ("train", "val", "test")},
            sidecars=[f"{ML_OUT}/data/{s}.json" for s in ("train", "val", "test")],
        log:
            f"{ML_LOGS}/data/build_id.log",
        conda:
            "../envs/oodflow.yaml"
        threads: ML_DECODE_THREADS
        params:
            data=canonical(ml_data_params(config, "id")),
        script:
            "../scripts/ml_build_id.py"

    rule ml_build_outliers:
        input:
            unpack(ml_outlier_source),
        output:
            npz=f"{ML_OUT}/data/{{kind}}/{{name}}.npz",
            sidecar=f"{ML_OUT}/data/{{kind}}/{{name}}.json",
        log:
            f"{ML_LOGS}/data/build_{{kind}}_{{name}}.log",
        wildcard_constraints:
            kind="ood|oe",
            name="[A-Za-z0-9_]+",
        conda:
            "../envs/oodflow.yaml"
        threads: ML_DECODE_THREADS
        params:
            data=lambda wc: canonical(ml_data_params(config, wc.kind)),
        script:
            "../scripts/ml_build_outliers.py"

    rule ml_data_manifest:
        input:
            [f"{ML_OUT}/data/{s}.json" for s in ("train", "val", "test")],
            [f"{ML_OUT}/data/ood/{o}.json" for o in ML_OOD],
            [f"{ML_OUT}/data/oe/{o}.json" for o in ML_OE],
        output:
            f"{ML_OUT}/data/manifest.json",
        log:
            f"{ML_LOGS}/data/manifest.log",
        conda:
            "../envs/oodflow.yaml"
        threads: 1
        script:
            "../scripts/ml_data_manifest.py"

    rule ml_train:
        input:
            unpack(ml_train_inputs),
        output:
            model=f"{ML_OUT}/runs/{{mlrun}}/model.pt",
            log=f"{ML_OUT}/runs/{{mlrun}}/train_log.csv",
        log:
            f"{ML_LOGS}/train/{{mlrun}}.log",
        benchmark:
            f"{ML_LOGS}/benchmarks/train/{{mlrun}}.tsv"
        wildcard_constraints:
            mlrun="|".join(ML_RUNS),
        conda:
            "../envs/oodflow.yaml"
        threads: 1
        resources:
            gpu=1,
            runtime=ml_resource("runtime"),
            mem_mb=ml_resource("mem_mb"),
            cpus_per_task=ml_resource("cpus_per_task"),
        params:
            run=ml_run_params,
            checkpoint=lambda wc: f"{ML_OUT}/runs/{wc.mlrun}/checkpoint-last.pt",
        script:
            "../scripts/ml_train.py"

    # extract once, score many: one job per run caches every set it is scored on
    rule ml_extract:
        input:
            **{f"data_{k}": f"{ML_OUT}/data/{v}.npz" for k, v in ML_CACHED.items()},
            model=f"{ML_OUT}/runs/{{mlrun}}/model.pt",
        output:
            **{
                f"cache_{k}": f"{ML_OUT}/features/{{mlrun}}/{v}.npz"
                for k, v in ML_CACHED.items()
            },
        log:
            f"{ML_LOGS}/features/{{mlrun}}.log",
        benchmark:
            f"{ML_LOGS}/benchmarks/features/{{mlrun}}.tsv"
        wildcard_constraints:
            mlrun="|".join(ML_RUNS),
        conda:
            "../envs/oodflow.yaml"
        threads: 1
        resources:
            gpu=1,
            runtime=ml_resource("runtime", "extract", ML_CACHED.values()),
            mem_mb=ml_resource("mem_mb", "extract", ML_CACHED.values()),
            cpus_per_task=ml_resource("cpus_per_task", "extract", ML_CACHED.values()),
        params:
            transform=ML["benchmark"]["eval_transform"],
        script:
            "../scripts/ml_extract.py"

    rule ml_scores:
        input:
            **{k: f"{ML_OUT}/features/{{mlrun}}/{v}.npz" for k, v in ML_CACHED.items()},
        output:
            **{s: f"{ML_OUT}/scores/{{mlrun}}/{s}.npz" for s in ML_SCORES},
        log:
            f"{ML_LOGS}/scores/{{mlrun}}.log",
        wildcard_constraints:
            mlrun="|".join(ML_RUNS),
        conda:
            "../envs/oodflow.yaml"
        threads: 1
        params:
            scores=canonical(ML["scores"]),
        script:
            "../scripts/ml_scores.py"

    rule ml_evaluate:
        input:
            scores=expand(
                f"{ML_OUT}/scores/{{mlrun}}/{{score}}.npz",
                mlrun=ML_RUNS,
                score=ML_SCORES,
            ),
            caches=expand(f"{ML_OUT}/features/{{mlrun}}/test.npz", mlrun=ML_RUNS),
            train=f"{ML_OUT}/data/train.npz",
        output:
            csv=f"{ML_OUT}/tables/metrics.csv",
            tail=f"{ML_OUT}/tables/ml_tail.csv",
            json=f"{ML_OUT}/metrics.json",
        log:
            f"{ML_LOGS}/report/evaluate.log",
        conda:
            "../envs/oodflow.yaml"
        threads: 1
        params:
            tail=canonical(ML["tail"]),
        script:
            "../scripts/ml_evaluate.py"

    rule ml_report:
        input:
            metrics=f"{ML_OUT}/tables/metrics.csv",
            tail=f"{ML_OUT}/tables/ml_tail.csv",
        output:
            md=f"{ML_OUT}/tables/ml_table.md",
            tex=f"{ML_OUT}/tables/ml_table.tex",
            tail_md=f"{ML_OUT}/tables/ml_tail.md",
            html=table_page(ML_BENCH.name, "ml_table", CAT_EDGE),
            tail_html=table_page(ML_BENCH.name, "ml_tail", CAT_EDGE),
            tail_png=report(
                f"{ML_OUT}/figures/ml_tail.png",
                caption="../report/ml_tail.rst",
                category=CAT_EDGE,
            ),
        log:
            f"{ML_LOGS}/report/report.log",
        conda:
            "../envs/oodflow.yaml"
        threads: 1
        script:
            "../scripts/ml_report.py"

    if ML_SEL is not None:

        # the backbone's features (before the classifier neck) of the ID training images and of
        # every candidate set
        rule ml_oe_features:
            input:
                **(
                    {"model": f"{ML_OUT}/runs/{ML_SEL['run']}/model.pt"}
                    if ML_SEL["trained"]
                    else {}
                ),
                **{
                    f"data_{c}": f"{ML_OUT}/data/{v}.npz"
                    for c, v in ML_CANDIDATES.items()
                },
                **(
                    {}
                    if ML_SEL["trained"]
                    else weights_input(ML["runs"][ML_SEL["run"]])
                ),
                data_train=f"{ML_OUT}/data/train.npz",
                # the model at initialisation reads the pretrained weights (if it has any)
            output:
                **{
                    f"cache_{c}": f"{ML_OUT}/oe_selection/{v}.npz"
                    for c, v in ML_CANDIDATES.items()
                },
                cache_train=f"{ML_OUT}/oe_selection/train.npz",
            log:
                f"{ML_LOGS}/oe_selection/features.log",
            conda:
                "../envs/oodflow.yaml"
            threads: 1
            resources:
                gpu=1,
                runtime=ml_resource("runtime", "extract", ML_SEL_SETS, ML_SEL["run"]),
                mem_mb=ml_resource("mem_mb", "extract", ML_SEL_SETS, ML_SEL["run"]),
                cpus_per_task=ml_resource(
                    "cpus_per_task", "extract", ML_SEL_SETS, ML_SEL["run"]
                ),
            params:
                run=canonical(ml_run_config(config, ML_SEL["run"])),
                trained=ML_SEL["trained"],
            script:
                "../scripts/ml_oe_features.py"

        rule ml_oe_selection:
            input:
                **{
                    c: f"{ML_OUT}/oe_selection/{v}.npz"
                    for c, v in ML_CANDIDATES.items()
                },
                train=f"{ML_OUT}/oe_selection/train.npz",
            output:
                csv=f"{ML_OUT}/tables/ml_oe_selection.csv",
                md=f"{ML_OUT}/tables/ml_oe_selection.md",
                html=table_page(ML_BENCH.name, "ml_oe_selection", CAT_EDGE),
            log:
                f"{ML_LOGS}/oe_selection/ranking.log",
            conda:
                "../envs/oodflow.yaml"
            threads: 1
            params:
                selection=canonical(ML_SEL),
            script:
                "../scripts/ml_oe_selection.py"
