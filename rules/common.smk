# Shared helpers: config validation (before any job runs), paths and input functions.
import json
import sys

# Use this checkout's library, whether it is pip-installed or not (e.g. under --sdm conda).
sys.path.insert(0, f"{workflow.basedir}/src")

from oodflow import config as oodflow_config
from oodflow.data import BENCHMARKS
from oodflow.data.benchmarks import Source
from oodflow.data.catalog import DATASETS
from oodflow.methods import AUX_METHODS
from oodflow.report.references import resolve as resolve_reference
from oodflow.scores import NETWORK_SCORES
from oodflow.steps import data_config, run_config

try:
    _validated = oodflow_config.validate(config)
except oodflow_config.ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_validated)

BENCH = config["benchmark"]["name"]
BENCHMARK = BENCHMARKS.get(BENCH)
OUT = f"results/{BENCH}"
LOGS = f"logs/{BENCH}"
RUNS = list(config["runs"])
SCORES = list(config["scores"])
OOD_SETS = list(config["benchmark"]["ood_sets"])
ID_SPLITS = ["train", "val", "test"]
# Sets that are scored: the ID test split (key "id") and every OOD set (key = its name).
EVAL_SETS = {"id": "test", **{name: f"ood/{name}" for name in OOD_SETS}}


# Two-run comparison tables and figures (report.comparisons), by name.
COMPARISONS = {spec["name"]: spec for spec in config["report"]["comparisons"]}


wildcard_constraints:
    run="|".join(RUNS),
    comparison="|".join(COMPARISONS) or "(?!)",
    score="|".join(SCORES),
    ood="[A-Za-z0-9_]+",
    dataset="train|val|test|ood/[A-Za-z0-9_]+",
    ds="[a-z0-9_]+",
    filename="[^/]+",


# Catalog benchmarks build their auxiliary outlier pool only when a method asks for it (outlier
# exposure); the embedded pool is cheap and always built.
USES_AUX = any(spec["method"] in AUX_METHODS for spec in config["runs"].values())
AUX_SETS = ["aux"] if BENCHMARK.source is None or USES_AUX else []
# Catalog sets are decoded and resized in a thread pool (Food-101: ~100k JPEGs); embedded ones are not.
DECODE_THREADS = 1 if BENCHMARK.source is None else 4


def source_inputs(source):
    """The prepared (and, for list-form data, raw) folders of a catalog source; none if embedded.

    ancient(): datasets restored by `dvc pull` get fresh mtimes, which must not rebuild the stored
    sets (and so retrain); a changed dataset is a changed content hash in DVC, not an mtime.
    """
    if source is None:
        return {}
    root = f"resources/datasets/{source.dataset}"
    return {"prepared": ancient(f"{root}/prepared"), "raw": ancient(f"{root}/raw")}


def id_source(wildcards):
    """The ID dataset's folders (list-form data such as Food-101 are read from the raw one)."""
    if BENCHMARK.source is None:
        return {}
    return source_inputs(Source(BENCHMARK.source, "train"))


def ood_source(wildcards):
    return source_inputs(BENCHMARK.ood_sources.get(wildcards.ood))


def aux_source(wildcards):
    return source_inputs(BENCHMARK.aux_source)


def final_outputs():
    return [
        f"{OUT}/data/manifest.json",
        f"{OUT}/figures/data_samples.png",
        f"{OUT}/tables/metrics.csv",
        f"{OUT}/metrics.json",
        f"{OUT}/tables/fpr95_auroc.md",
        f"{OUT}/tables/fpr95_auroc.tex",
        *expand(f"{OUT}/figures/{{run}}/hist_{{score}}.png", run=RUNS, score=SCORES),
        *expand(f"{OUT}/figures/{{run}}/roc_{{score}}.png", run=RUNS, score=SCORES),
        *comparison_outputs(),
    ]


def comparison_outputs():
    """Tables of every two-run comparison and its score histograms per (comparison, score)."""
    outputs = []
    for name, spec in COMPARISONS.items():
        outputs += expand(
            f"{OUT}/tables/compare_{name}.{{ext}}", ext=["md", "tex", "csv"]
        )
        outputs += expand(
            f"{OUT}/figures/compare_{name}/hist_{{score}}.png", score=spec["scores"]
        )
    return outputs


def comparison_table_inputs(wildcards):
    """The metrics table and the comparison's file of reported numbers, if it names one."""
    reference = COMPARISONS[wildcards.comparison]["reference"]
    inputs = {"metrics": f"{OUT}/tables/metrics.csv"}
    if reference is not None:
        inputs["reference"] = str(resolve_reference(reference))
    return inputs


def comparison_params(wildcards):
    return canonical(COMPARISONS[wildcards.comparison])


def comparison_figure_inputs(wildcards):
    spec = COMPARISONS[wildcards.comparison]
    return {
        role: f"{OUT}/scores/{spec[role]}/{wildcards.score}.npz"
        for role in ("baseline", "candidate")
    }


# Params are rerun triggers; Snakemake compares them as text, so they are canonical JSON (sorted
# keys): reordering the config file must not retrain anything.
def canonical(obj):
    return json.dumps(obj, sort_keys=True)


def id_data_params(wildcards):
    """The config that determines the ID splits."""
    return canonical(data_config(config, "id"))


def ood_data_params(wildcards):
    return canonical(data_config(config, "ood"))


def aux_data_params(wildcards):
    return canonical(data_config(config, "aux"))


def run_params(wildcards):
    """The config that determines a trained model."""
    return canonical(run_config(config, wildcards.run))


def train_inputs(wildcards):
    """ID train/val splits, the auxiliary pool (outlier methods) and the run to fine-tune (init_from)."""
    inputs = {"train": f"{OUT}/data/train.npz", "val": f"{OUT}/data/val.npz"}
    if config["runs"][wildcards.run]["method"] in AUX_METHODS:
        inputs["aux"] = f"{OUT}/data/aux.npz"
    if config["runs"][wildcards.run]["init_from"] is not None:
        inputs["init"] = (
            f"{OUT}/runs/{config['runs'][wildcards.run]['init_from']}/model.pt"
        )
    return inputs


def resume_checkpoint(wildcards):
    """Written every epoch, not a declared output (so a failed job keeps it); removed on success."""
    return f"{OUT}/runs/{wildcards.run}/checkpoint-last.pt"


def score_params(wildcards):
    return canonical(
        {"name": wildcards.score, "args": config["scores"][wildcards.score]}
    )


def score_gpus(wildcards):
    return int(wildcards.score in NETWORK_SCORES)


def score_inputs(wildcards):
    """Post-hoc scores read the feature caches (and the head stored in them); network scores re-run
    the model on the stored inputs."""
    inputs = {"train": f"{OUT}/features/{wildcards.run}/train.npz"}
    for key, dataset in EVAL_SETS.items():
        if wildcards.score in NETWORK_SCORES:
            inputs["model"] = f"{OUT}/runs/{wildcards.run}/model.pt"
            inputs[f"data_{key}"] = f"{OUT}/data/{dataset}.npz"
        else:
            inputs[f"cache_{key}"] = f"{OUT}/features/{wildcards.run}/{dataset}.npz"
    return inputs


def dataset_downloads(wildcards):
    """The downloaded files of a catalog dataset; ancient(): a `dvc pull` must not trigger reruns."""
    spec = DATASETS.get(wildcards.ds)
    return [
        ancient(f"resources/datasets/{spec.name}/downloads/{r.filename}")
        for r in spec.resources
    ]
