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
        html=table_page(RESULTS, "fpr95_auroc", CAT_SPINE),
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
            hist=report(
                expand(f"{OUT}/figures/{{{{run}}}}/hist_{{score}}.png", score=_sorted),
                caption="../report/hist.rst",
                category=run_category,
                subcategory="{run}",
            ),
            roc=report(
                expand(f"{OUT}/figures/{{{{run}}}}/roc_{{score}}.png", score=_sorted),
                caption="../report/roc.rst",
                category=run_category,
                subcategory="{run}",
            ),
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
            report(
                f"{OUT}/figures/{{run}}/prototypes.png",
                caption="../report/prototypes.rst",
                category=CAT_ADAPT,
                subcategory="{run}",
            ),
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
        html=table_page(RESULTS, "compare_{comparison}", CAT_FOOD),
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
        report(
            f"{OUT}/figures/compare_{{comparison}}/hist_{{score}}.png",
            caption="../report/comparison.rst",
            category=CAT_FOOD,
            subcategory="{comparison}",
        ),
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


rule cross_paper:
    input:
        run_score_paths(f"{OUT}/scores/{{run}}/{{score}}.npz"),
    output:
        csv=f"{OUT}/tables/cross_paper.csv",
        md=f"{OUT}/tables/cross_paper.md",
        tex=f"{OUT}/tables/cross_paper.tex",
        html=table_page(RESULTS, "cross_paper", CAT_CROSS),
        png=report(
            f"{OUT}/figures/cross_paper_ranking.png",
            caption="../report/cross_paper.rst",
            category=CAT_CROSS,
        ),
    log:
        f"{LOGS}/report/cross_paper.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    params:
        report=canonical(
            {k: config[k] for k in ("seed", "seeds", "plots")}
            | {"bootstrap": config["report"]["bootstrap"]}
        ),
    script:
        "../scripts/cross_paper.py"


# What kind of run each results folder of this config holds (smoke, embedded, paper): the scorecard
# reads it, and so can anyone who finds the folder later.
rule provenance:
    output:
        "results/{folder}/provenance.json",
    log:
        "logs/report/provenance_{folder}.log",
    wildcard_constraints:
        folder="|".join(config_parts()) or "(?!)",
    localrule: True
    params:
        record=provenance_params,
    run:
        oodflow_provenance.write(output[0], json.loads(params.record))


# Each paper's qualitative findings on this config's benchmarks: paired-bootstrap intervals and
# verdicts (oodflow.report.claims); the scorecard shows the table as its last section.
rule claims:
    input:
        unpack(claims_inputs),
    output:
        md="results/summary/tables/claims.md",
        csv="results/summary/tables/claims.csv",
        html=table_page("summary", "claims", CAT_CROSS),
        png=report(
            "results/summary/figures/claims_forest.png",
            caption="../report/claims.rst",
            category=CAT_CROSS,
        ),
    log:
        "logs/report/claims.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    params:
        claims=claims_params,
    script:
        "../scripts/claims.py"


rule scorecard:
    input:
        unpack(scorecard_inputs),
    output:
        md="results/summary/tables/scorecard.md",
        csv="results/summary/tables/scorecard.csv",
        html=table_page("summary", "scorecard", CAT_CROSS),
    log:
        "logs/report/scorecard.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    script:
        "../scripts/scorecard.py"


# A few numbers per run (ID accuracy or mAP, mean AUROC and FPR@95 of its primary score) for
# `dvc metrics show` and `dvc exp show` (oodflow.report.headline); the long table stays metrics.csv.
for _folder, _part in config_parts().items():

    rule:
        name:
            f"headline_{_part}"
        input:
            f"results/{_folder}/tables/metrics.csv",
        output:
            oodflow_headline.paths(config, _part, _folder),
        log:
            f"logs/report/headline_{_folder}.log",
        localrule: True
        conda:
            "../envs/oodflow.yaml"
        threads: 1
        params:
            part=_part,
            primaries=canonical(oodflow_headline.primaries(config, _part)),
        script:
            "../scripts/headline.py"
