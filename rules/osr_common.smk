# Open-set recognition (issue 8; docs/osr.md): paths, wildcards and input functions of rules/osr.smk.
from oodflow.osr import workflow as osr_workflow
from oodflow.osr.splits import DATASETS as OSR_DATASETS

OSR = config.get("osr")
# Without an osr section the rules' outputs lie in a folder no config writes, so that another config's
# results/osr left in the workspace (read by the scorecard) is a plain input, never rebuilt from here.
OSR_NAME = OSR["name"] if OSR else ".no-osr-section"
OSR_OUT = f"results/{OSR_NAME}"
OSR_LOGS = f"logs/{OSR_NAME}"
# One benchmark's folder; its wildcards: family (F1 | AUROC), osr_ds, trial (0-4).
OSR_BENCH = f"{OSR_OUT}/{{family}}/{{osr_ds}}/trial{{trial}}"
OSR_TABLES = ["auroc", "oscr", "f1", "accuracy"]


wildcard_constraints:
    family="F1|AUROC",
    osr_ds="|".join(OSR_DATASETS),
    trial="[0-4]",
    osr_method="|".join(OSR["methods"]) if OSR else "(?!)",


def osr_benchmarks():
    """Every (family, dataset, trial) of the config, in config order."""
    if not OSR:
        return []
    return [
        {"family": f, "osr_ds": d, "trial": t}
        for f in OSR["splits"]
        for d in OSR["datasets"]
        for t in OSR["trials"]
    ]


def osr_method_files(name):
    """``name`` (eval.json, oscr.npz) of every benchmark x method."""
    return [
        f"{OSR_OUT}/{b['family']}/{b['osr_ds']}/trial{b['trial']}/{m}/{name}"
        for b in osr_benchmarks()
        for m in OSR["methods"]
    ]


def osr_outputs():
    """The OSR tables, long-form metrics and OSCR figure (none without an `osr` section)."""
    if not OSR:
        return []
    return [
        *expand(
            f"{OSR_OUT}/tables/{{table}}.{{ext}}",
            table=OSR_TABLES,
            ext=["md", "tex", "csv"],
        ),
        f"{OSR_OUT}/tables/metrics.csv",
        f"{OSR_OUT}/figures/oscr_curves.png",
    ]


def osr_data_inputs(wildcards):
    """The prepared folders of the dataset's catalog sources, by catalog name (none for mnist5k)."""
    ds = OSR_DATASETS[wildcards.osr_ds]
    sources = dict.fromkeys(s for s in (ds.known_source, ds.unknown_source) if s)
    return {name: dataset_folders(name)["prepared"] for name in sources}


def osr_data_params(wildcards):
    return canonical(
        osr_workflow.data_config(
            config, wildcards.osr_ds, wildcards.family, int(wildcards.trial)
        )
    )


def osr_run_params(wildcards):
    return canonical(
        osr_workflow.run_config(
            config,
            wildcards.osr_ds,
            wildcards.family,
            int(wildcards.trial),
            wildcards.osr_method,
        )
    )


def osr_report_inputs(wildcards):
    inputs = {
        "evals": osr_method_files("eval.json"),
        "curves": osr_method_files("oscr.npz"),
    }
    if OSR["reference"] is not None:
        inputs["reference"] = checkout_path(resolve_reference(OSR["reference"]))
    return inputs
