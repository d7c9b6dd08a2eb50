# Multi-label sub-DAG helpers (variables, input functions); its rules are in rules/multilabel.smk.
from oodflow.multilabel.steps import (
    catalog_datasets as ml_catalog_datasets,
    data_params as ml_data_params,
    oe_sets as ml_oe_sets,
    run_config as ml_run_config,
    uses_oe as ml_uses_oe,
)
from oodflow.multilabel import ML_BENCHMARKS

ML = config.get("multilabel")


def multilabel_outputs():
    """The multi-label tables and figures (none when the section is absent)."""
    if ML is None:
        return []
    outputs = [
        f"{ML_OUT}/data/manifest.json",
        f"{ML_OUT}/tables/metrics.csv",
        f"{ML_OUT}/metrics.json",
        f"{ML_OUT}/tables/ml_table.md",
        f"{ML_OUT}/tables/ml_table.tex",
        f"{ML_OUT}/tables/ml_tail.md",
        f"{ML_OUT}/figures/ml_tail.png",
    ]
    if ML_SEL is not None:
        outputs += [f"{ML_OUT}/tables/ml_oe_selection.{ext}" for ext in ("csv", "md")]
    return outputs


if ML is not None:
    ML_BENCH = ML_BENCHMARKS.get(ML["benchmark"]["name"])
    ML_OUT = f"results/{ML_BENCH.name}"
    ML_LOGS = f"logs/{ML_BENCH.name}"
    ML_RUNS = list(ML["runs"])
    ML_SCORES = list(ML["scores"])
    ML_OOD = list(ML["benchmark"]["ood_sets"])
    ML_OE = ml_oe_sets(config)
    ML_SEL = ML["oe_selection"]
    # every set of a run's feature cache: ID train (fitting), ID test ("id") and the OOD sets
    ML_CACHED = {"train": "train", "id": "test", **{o: f"ood/{o}" for o in ML_OOD}}
    ML_CANDIDATES = {} if ML_SEL is None else {
        c: (f"oe/{c}" if c in ML_BENCH.oe_sets else f"ood/{c}") for c in ML_SEL["candidates"]
    }  # fmt: skip
    ML_SEL_SETS = (
        "train",
        *ML_CANDIDATES.values(),
    )  # what ml_oe_features passes forward
    ML_DECODE_THREADS = 1 if ML_BENCH.source is None else 4

    def ml_folders(source):
        return {} if ML_BENCH.source is None else dataset_folders(source)

    def ml_outlier_source(wildcards):
        """The catalog folders of an OOD set or OE pool (none for the embedded benchmark)."""
        sources = (
            ML_BENCH.ood_sources if wildcards.kind == "ood" else ML_BENCH.oe_sources
        )
        source = sources.get(wildcards.name)
        return {} if source is None else ml_folders(source.dataset)

    def ml_run_params(wildcards):
        return canonical(ml_run_config(config, wildcards.mlrun))

    def ml_train_inputs(wildcards):
        inputs = {"train": f"{ML_OUT}/data/train.npz", "val": f"{ML_OUT}/data/val.npz"}
        if ml_uses_oe(config, wildcards.mlrun):
            inputs["oe"] = f"{ML_OUT}/data/oe/{ML['benchmark']['oe_set']}.npz"
        return {**inputs, **weights_input(ML["runs"][wildcards.mlrun])}
