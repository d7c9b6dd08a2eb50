# Metrics, paper-style tables and figures.


rule evaluate:
    input:
        scores=run_score_paths(f"{OUT}/scores/{{run}}/{{score}}.npz"),
        caches=expand(f"{OUT}/features/{{run}}/test.npz", run=RUNS),
    output:
        csv=f"{OUT}/tables/metrics.csv",
        json=f"{OUT}/metrics.json",
        draws=f"{OUT}/tables/ood_draws.npz",
    log:
        f"{LOGS}/report/evaluate.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    params:
        evaluation=canonical(config["evaluation"]),
    script:
        "../scripts/evaluate.py"


rule tables:
    input:
        f"{OUT}/tables/metrics.csv",
    output:
        md=f"{OUT}/tables/fpr95_auroc.md",
        tex=f"{OUT}/tables/fpr95_auroc.tex",
    log:
        f"{LOGS}/report/tables.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    script:
        "../scripts/tables.py"


# Each run's scores in sorted order (scripts/figures.py zips the files with that list).
for _names, _runs in SCORE_GROUPS.items():
    _sorted = sorted(_names)

    rule:
        name:
            group_name("figures", _names)
        input:
            expand(f"{OUT}/scores/{{{{run}}}}/{{score}}.npz", score=_sorted),
        output:
            hist=expand(f"{OUT}/figures/{{{{run}}}}/hist_{{score}}.png", score=_sorted),
            roc=expand(f"{OUT}/figures/{{{{run}}}}/roc_{{score}}.png", score=_sorted),
            roc_csv=expand(f"{OUT}/plots/roc/{{{{run}}}}-{{score}}.csv", score=_sorted),
        log:
            f"{LOGS}/report/figures_{{run}}.log",
        wildcard_constraints:
            run="|".join(_runs),
        conda:
            "../envs/oodflow.yaml"
        threads: 1
        params:
            plots=canonical(config["plots"]),
        script:
            "../scripts/figures.py"


if PROTOTYPE_RUNS:

    rule prototype_figure:
        input:
            train=f"{OUT}/features/{{run}}/train.npz",
            ood=f"{OUT}/features/{{run}}/ood/{OOD_SETS[0]}.npz",
        output:
            f"{OUT}/figures/{{run}}/prototypes.png",
        log:
            f"{LOGS}/report/prototypes_{{run}}.log",
        wildcard_constraints:
            run="|".join(PROTOTYPE_RUNS),
        conda:
            "../envs/oodflow.yaml"
        threads: 1
        params:
            plots=canonical(config["plots"]),
            ood=OOD_SETS[0],
        script:
            "../scripts/prototype_figure.py"


rule comparison_table:
    input:
        unpack(comparison_table_inputs),
    output:
        md=f"{OUT}/tables/compare_{{comparison}}.md",
        tex=f"{OUT}/tables/compare_{{comparison}}.tex",
        csv=f"{OUT}/tables/compare_{{comparison}}.csv",
    log:
        f"{LOGS}/report/compare_{{comparison}}.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    params:
        spec=comparison_params,
    script:
        "../scripts/comparison_table.py"


rule comparison_figure:
    input:
        unpack(comparison_figure_inputs),
    output:
        f"{OUT}/figures/compare_{{comparison}}/hist_{{score}}.png",
    log:
        f"{LOGS}/report/compare_{{comparison}}_{{score}}.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    params:
        spec=comparison_params,
        plots=canonical(config["plots"]),
    script:
        "../scripts/comparison_figure.py"
