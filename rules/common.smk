# Shared helpers: config validation (before any job runs), paths and input functions.
import glob
import json
import sys
from pathlib import Path

# Use this checkout's library, whether it is pip-installed or not (e.g. under --sdm conda).
sys.path.insert(0, f"{workflow.basedir}/src")

from oodflow import config as oodflow_config
from oodflow import provenance as oodflow_provenance
from oodflow.report import claims as oodflow_claims
from oodflow.report import claims_data as oodflow_claims_data
from oodflow.report import headline as oodflow_headline
from oodflow.data import BENCHMARKS
from oodflow.data.benchmarks import Source
from oodflow.data.catalog import DATASETS
from oodflow.methods import AUX_METHODS, HEADLESS_METHODS, PROTOTYPE_METHODS
from oodflow.report.references import resolve as resolve_reference
from oodflow.report.references import rule_input
from oodflow.scores import NETWORK_SCORES
from oodflow.steps import (
    catalog_datasets,
    data_config,
    gan_config,
    parser_args,
    prepared_with,
    run_config,
    uses_aux,
    uses_gan,
)
from oodflow.data.catalog import gan_dataset
from oodflow.models.weights import WEIGHTS, config_weights, weights_file, weights_for
from oodflow.gan import format_sigma
from oodflow import cluster
from oodflow.devices import count_without_torch

# One GPU job per visible GPU (every GPU rule declares gpu=1; each job claims a device of its own,
# oodflow.devices), unless --resources gpu=N says otherwise; no limit on a machine without GPUs.
if "gpu" not in workflow.global_resources and count_without_torch():
    workflow.register_resource("gpu", count_without_torch())

# Snakemake has read the config files already, keeping the last of repeated keys without a word:
# read them again, strictly (a repeated key is an error naming the file and the line).
for _configfile in workflow.configfiles:
    try:
        oodflow_config.read(_configfile)
    except oodflow_config.ConfigError as err:
        raise WorkflowError(str(err)) from None

try:
    _validated = oodflow_config.validate(config)
except oodflow_config.ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_validated)

BENCH = config["benchmark"]["name"]
BENCHMARK = BENCHMARKS.get(BENCH)
# The runs' results folder: config `name`, by default the benchmark's (paper configs of one benchmark
# set their own, so that their runs do not overwrite each other's).
RESULTS = config["name"] or BENCH
OUT = f"results/{RESULTS}"
LOGS = f"logs/{RESULTS}"
RUNS = list(config["runs"])
# Runs whose parameters an Optuna search picks first (rule hpo).
HPO_RUNS = [run for run, spec in config["runs"].items() if spec.get("hpo") is not None]
SCORES = list(config["scores"])
# The scores of each run: runs.<run>.scores (PALM/ADAPT: distance scores only), else all of SCORES.
RUN_SCORES = {run: spec.get("scores") or SCORES for run, spec in config["runs"].items()}
# Runs grouped by their score list (posthoc/figures jobs per group; the group of all SCORES
# keeps the plain rule names).
SCORE_GROUPS = {}
for _run, _names in RUN_SCORES.items():
    SCORE_GROUPS.setdefault(tuple(_names), []).append(_run)
NETWORK_SCORE_NAMES = [name for name in SCORES if name in NETWORK_SCORES]
# Runs of a prototype method (PALM, ADAPT): they also get a figure of their prototypes.
PROTOTYPE_RUNS = [
    r for r, s in config["runs"].items() if s["method"] in PROTOTYPE_METHODS
]
# Runs whose logits come from no trained classifier head (PALM, ADAPT, ARPL).
HEADLESS_RUNS = [
    r for r, s in config["runs"].items() if s["method"] in HEADLESS_METHODS
]
# Normalisation of the inputs whose features are cached (evaluation.eval_stats; QUIRK cifar10).
EVAL_STATS = config["evaluation"].get("eval_stats", "benchmark")
# sorted: the post-hoc job's params must not change when the config lists its scores in another order
POSTHOC_SCORES = sorted(name for name in SCORES if name not in NETWORK_SCORES)
OOD_SETS = list(config["benchmark"]["ood_sets"])
ID_SPLITS = ["train", "val", "test"]
# Sets that are scored: the ID test split (key "id") and every OOD set (key = its name).
EVAL_SETS = {"id": "test", **{name: f"ood/{name}" for name in OOD_SETS}}
# Sets whose logits and features are cached: the ID train split (fitting) and the evaluated sets.
CACHED_SETS = ["train", *EVAL_SETS.values()]


# Two-run comparison tables and figures (report.comparisons), by name.
COMPARISONS = {spec["name"]: spec for spec in config["report"]["comparisons"]}
# Adversarial evaluation (config `adversarial`, absent: off) of these runs; sweeps (expanded into
# runs by the validation) by name, each with a metric-vs-value table and figure.
ADVERSARIAL = config.get("adversarial")
# (not of headless runs by default: their logits come from no trained classifier head)
ADV_RUNS = (
    []
    if ADVERSARIAL is None
    else (ADVERSARIAL["runs"] or [r for r in RUNS if r not in HEADLESS_RUNS])
)
SWEEPS = list(config["sweeps"])


wildcard_constraints:
    run="|".join(RUNS) or "(?!)",
    comparison="|".join(COMPARISONS) or "(?!)",
    sweep="|".join(SWEEPS) or "(?!)",
    score="|".join(SCORES) or "(?!)",
    ood="[A-Za-z0-9_]+",
    dataset="train|val|test|ood/[A-Za-z0-9_]+",
    ds="[a-z0-9_]+",
    filename="[^/]+",
    sigma=r"[0-9]+\.[0-9]+",
    part="[A-Za-z0-9_.-]+",
    table="[A-Za-z0-9_.-]+",


# Catalog benchmarks build their auxiliary outlier pool only when a method asks for it (outlier
# exposure) or a search validates on it (hpo); the embedded pool is cheap and always built.
USES_AUX = uses_aux(config)
AUX_SETS = ["aux"] if BENCHMARK.source is None or USES_AUX else []
# The catalog datasets this config needs (the `datasets` target; `python -m oodflow.datasets`).
CATALOG_DATASETS = catalog_datasets(config)
# The pretrained weights files its runs read (rule download_weights; also in the `datasets` target).
CONFIG_WEIGHTS = config_weights(config)


def weights_input(spec):
    """``{"weights": file}`` for a run whose model_args ask for pretrained weights, else ``{}``.
    ancient(): a `dvc pull` of resources/weights must not retrain."""
    name = weights_for(spec["model"], spec["model_args"])
    return {} if name is None else {"weights": ancient(str(weights_file(name)))}


def dataset_folders(ds):
    """What the stored sets read of a catalog dataset: its prepared folder and, for list-form data
    (paths of images), its raw folder. Array-form data needs no raw folder, so it need not be
    pulled from DVC.

    ancient(): datasets restored by `dvc pull` get fresh mtimes, which must not rebuild the stored
    sets (and so retrain); a changed dataset is a changed content hash in DVC, not an mtime. Not
    ancient when the folder on disk was prepared with other parser options than the config's: the
    prepare job then reruns (params), and ancient() would keep Snakemake from rebuilding the sets
    derived from it in the same run.
    """
    root = f"resources/datasets/{ds}"
    current = prepared_with(f"{root}/prepared") == parser_args(config, ds)
    mark = ancient if current else str
    folders = {"prepared": mark(f"{root}/prepared")}
    if DATASETS.get(ds).form == "list":
        folders["raw"] = mark(f"{root}/raw")
    return folders


# Catalog sets are decoded and resized in a thread pool (Food-101: ~100k JPEGs); embedded ones are not.
DECODE_THREADS = 1 if BENCHMARK.source is None else 4


def source_inputs(source):
    """The folders of a catalog source (see dataset_folders); none if embedded."""
    return {} if source is None else dataset_folders(source.dataset)


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
    """Everything the default target builds: the single-label runs' outputs (if the config has runs),
    the HTML pages of the tables (for the report) and the reproduction scorecard."""
    return [
        *spine_outputs(),
        *osr_outputs(),
        *multilabel_outputs(),
        *table_pages(),
        *headline_outputs(),
        *summary_outputs(),
    ]


def headline_outputs():
    """The headline metrics of every results folder of this config (rules headline_<part>)."""
    return [
        path
        for folder, part in config_parts().items()
        for path in oodflow_headline.paths(config, part, folder)
    ]


def spine_outputs():
    """Tables, figures and metrics of the single-label runs (none without runs)."""
    if not RUNS:
        return []
    return [
        f"{OUT}/data/manifest.json",
        f"{OUT}/figures/data_samples.png",
        f"{OUT}/tables/metrics.csv",
        f"{OUT}/metrics.json",
        f"{OUT}/tables/fpr95_auroc.md",
        f"{OUT}/tables/fpr95_auroc.tex",
        f"{OUT}/tables/cross_paper.md",
        f"{OUT}/figures/cross_paper_ranking.png",
        *run_score_paths(f"{OUT}/figures/{{run}}/hist_{{score}}.png"),
        *run_score_paths(f"{OUT}/figures/{{run}}/roc_{{score}}.png"),
        *expand(f"{OUT}/figures/{{run}}/prototypes.png", run=PROTOTYPE_RUNS),
        *expand(f"{OUT}/figures/hpo/{{run}}_history.png", run=HPO_RUNS),
        *expand(f"{OUT}/figures/hpo/{{run}}_importance.png", run=HPO_RUNS),
        *comparison_outputs(),
        *adversarial_outputs(),
        *expand(f"{OUT}/tables/sweep_{{sweep}}.csv", sweep=SWEEPS),
        *expand(f"{OUT}/figures/sweep_{{sweep}}.png", sweep=SWEEPS),
        *([f"{OUT}/figures/gan_samples.png"] if GAN_SIGMAS else []),
    ]


# The GAN outlier pools the runs train on (one per sigma), for the samples figure.
GAN_SIGMAS = sorted(
    {
        format_sigma(s["outliers"]["sigma"])
        for s in config["runs"].values()
        if uses_gan(s)
    }
)


def gan_figure_inputs(wildcards):
    """The ID training images beside the GAN pool of every sigma the runs use."""
    return {
        "ID train": f"{OUT}/data/train.npz",
        **{f"GAN sigma={s}": f"{OUT}/data/gan/{s}.npz" for s in GAN_SIGMAS},
    }


def run_score_paths(pattern):
    """``pattern`` (with {run} and {score}) for every run and each of its scores."""
    return [pattern.format(run=run, score=s) for run in RUNS for s in RUN_SCORES[run]]


def group_name(base, names):
    """Name of a score group's job kind: plain for the group of all scores, else suffixed by its index."""
    if list(names) == SCORES:
        return base
    return f"{base}_{[g for g in SCORE_GROUPS if list(g) != SCORES].index(names) + 1}"


def adversarial_outputs():
    if ADVERSARIAL is None:
        return []
    return [f"{OUT}/tables/adversarial.csv", f"{OUT}/figures/adversarial_auroc.png"]


def adversarial_inputs(wildcards):
    """The run's model, the ID test split and every OOD set (inputs, not feature caches)."""
    inputs = {
        "model": f"{OUT}/runs/{wildcards.run}/model.pt",
        "id": f"{OUT}/data/test.npz",
    }
    for name in OOD_SETS:
        inputs[f"ood_{name}"] = f"{OUT}/data/ood/{name}.npz"
    return inputs


def adversarial_params(wildcards):
    """What determines a run's adversarial metrics (not the list of evaluated runs)."""
    return canonical({k: v for k, v in ADVERSARIAL.items() if k != "runs"})


def sweep_params(wildcards):
    return canonical(config["sweeps"][wildcards.sweep])


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
        inputs["reference"] = checkout_path(resolve_reference(reference))
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
    return canonical(data_config(config, "ood", wildcards.ood))


def aux_data_params(wildcards):
    return canonical(data_config(config, "aux"))


def gan_params(wildcards):
    """The config that determines the in-workflow GAN."""
    return canonical(gan_config(config))


def gan_pool_inputs(wildcards):
    """The trained GAN's samples, or the prepared folder of the published file (benchmark.gan.source)."""
    if config["benchmark"]["gan"]["source"] == "published":
        return dataset_folders(gan_dataset(wildcards.sigma))
    return {"samples": f"{OUT}/gan/samples-{wildcards.sigma}.npz"}


def run_params(wildcards):
    """The config that determines a trained model."""
    return canonical(run_config(config, wildcards.run))


def train_inputs(wildcards):
    """ID train/val splits, the auxiliary pool (outlier methods), the run to fine-tune (init_from)
    and, for runs with a search (hpo), its best parameters and held-out aux images."""
    spec = config["runs"][wildcards.run]
    inputs = {"train": f"{OUT}/data/train.npz", "val": f"{OUT}/data/val.npz"}
    if uses_gan(spec):
        inputs["aux"] = f"{OUT}/data/gan/{format_sigma(spec['outliers']['sigma'])}.npz"
    elif spec["method"] in AUX_METHODS:
        inputs["aux"] = f"{OUT}/data/aux.npz"
    if spec["init_from"] is not None:
        inputs["init"] = f"{OUT}/runs/{spec['init_from']}/model.pt"
    if spec.get("hpo") is not None:
        inputs["best"] = f"{OUT}/hpo/{wildcards.run}/best.json"
        inputs["holdout"] = f"{OUT}/hpo/{wildcards.run}/holdout.npz"
    return {**inputs, **weights_input(spec)}


def hpo_inputs(wildcards):
    """What a search trains on: as the final run, but always with the aux pool (validation)."""
    spec = config["runs"][wildcards.run]
    inputs = {
        "train": f"{OUT}/data/train.npz",
        "val": f"{OUT}/data/val.npz",
        "aux": f"{OUT}/data/aux.npz",
    }
    if spec["init_from"] is not None:
        inputs["init"] = f"{OUT}/runs/{spec['init_from']}/model.pt"
    return {**inputs, **weights_input(spec)}


def hpo_study_db(wildcards):
    """The default SQLite storage of a search. Not a declared output: Snakemake deletes the outputs
    of a failed job, and the study is exactly what a killed or failed search must keep.
    """
    return f"{OUT}/hpo/{wildcards.run}/study.db"


def hpo_checkpoint(wildcards):
    """Per-epoch checkpoint of the trial in progress (kept on failure, like resume_checkpoint)."""
    return f"{OUT}/hpo/{wildcards.run}/trial-checkpoint.pt"


def resume_checkpoint(wildcards):
    """Written every epoch, not a declared output (so a failed job keeps it); removed on success."""
    return f"{OUT}/runs/{wildcards.run}/checkpoint-last.pt"


def score_params(wildcards):
    return canonical(
        {"name": wildcards.score, "args": config["scores"][wildcards.score]}
    )


def posthoc_names(run):
    """The post-hoc scores of ``run`` (sorted: the job's params must not depend on config order)."""
    return sorted(name for name in RUN_SCORES[run] if name not in NETWORK_SCORES)


def posthoc_params(wildcards):
    """All post-hoc scores of a run are one job: changing one recomputes them all (in a second)."""
    return canonical(
        {name: config["scores"][name] for name in posthoc_names(wildcards.run)}
    )


def posthoc_inputs(wildcards):
    """Post-hoc scores read the feature caches (and the head stored in them)."""
    inputs = {"train": f"{OUT}/features/{wildcards.run}/train.npz"}
    for key, dataset in EVAL_SETS.items():
        inputs[f"cache_{key}"] = f"{OUT}/features/{wildcards.run}/{dataset}.npz"
    return inputs


def network_score_inputs(wildcards):
    """Network scores re-run the model on the stored inputs."""
    inputs = {
        "train": f"{OUT}/features/{wildcards.run}/train.npz",
        "model": f"{OUT}/runs/{wildcards.run}/model.pt",
    }
    for key, dataset in EVAL_SETS.items():
        inputs[f"data_{key}"] = f"{OUT}/data/{dataset}.npz"
    return inputs


def dataset_params(wildcards):
    """The parser options of a catalog dataset (changing them re-prepares it)."""
    return canonical(parser_args(config, wildcards.ds))


def dataset_downloads(wildcards):
    """The downloaded files of a catalog dataset; ancient(): a `dvc pull` must not trigger reruns."""
    spec = DATASETS.get(wildcards.ds)
    return [
        ancient(f"resources/datasets/{spec.name}/downloads/{r.filename}")
        for r in spec.resources
    ]


# --------------------------------------------------------------------------- the HTML report
# `snakemake --report report.html`: every table (as an HTML page) and figure, grouped by paper.
# torch's intra-op threads in every job. Results depend on the thread count, so it is fixed here
# rather than following --cores (a run with --cores 1 and one with --cores 8 give the same bytes);
# one thread per job also lets N cores run N jobs, which beats 2-thread jobs on the small models.
TORCH_THREADS = 1

CAT_DATA = "0 Data"
CAT_SPINE = "1 Post-hoc scores (all runs)"
CAT_FOOD = "2 Food-101: energy fine-tuning, CORES, HPO"
CAT_AOE = "3 AOE: adversarial outlier exposure"
CAT_DIAS = "4 DIAS: open-set recognition"
CAT_ADAPT = "5 ADAPT / PALM: multi-prototype learning"
CAT_EDGE = "6 EDGE: multi-label OOD"
CAT_CROSS = "7 Cross-paper table and reproduction scorecard"
#: The category of a training method's figures (methods not listed: the spine's).
METHOD_CATEGORIES = {
    "oe": CAT_SPINE,
    "energy_ft": CAT_FOOD,
    "aoe": CAT_AOE,
    "palm": CAT_ADAPT,
    "adapt": CAT_ADAPT,
    "arpl": CAT_DIAS,
    "dias": CAT_DIAS,
    "edge": CAT_EDGE,
}


def run_category(wildcards):
    spec = config["runs"][wildcards.run]
    if uses_gan(spec):
        return CAT_AOE
    return METHOD_CATEGORIES.get(spec["method"], CAT_SPINE)


def metrics_tables():
    """Results folder -> long-form metrics table, for the scorecard: this config's (built by the DAG)
    and those other configs left in this workspace (e.g. results/food101 after a paper-scale run).
    """
    tables = {
        Path(p).parts[1]: p for p in sorted(glob.glob("results/*/tables/metrics.csv"))
    }
    if RUNS:
        tables[RESULTS] = f"{OUT}/tables/metrics.csv"
    if OSR:  # the open-set section's (rules/osr.smk)
        tables[OSR_NAME] = f"{OSR_OUT}/tables/metrics.csv"
    if ML is not None:
        tables[ML_BENCH.name] = f"{ML_OUT}/tables/metrics.csv"
    return dict(sorted(tables.items()))


def config_parts():
    """Results folder -> part ("spine", "osr", "multilabel") of what this config writes."""
    return oodflow_provenance.parts(config)


def provenance_files():
    """Results folder -> its provenance.json (oodflow.provenance): this config's (rule provenance)
    and those other configs left in this workspace."""
    files = {
        Path(p).parts[1]: p for p in sorted(glob.glob("results/*/provenance.json"))
    }
    files.update(
        {folder: f"results/{folder}/provenance.json" for folder in config_parts()}
    )
    return dict(sorted(files.items()))


def provenance_params(wildcards):
    return canonical(
        oodflow_provenance.record(config, config_parts()[wildcards.folder])
    )


def scorecard_inputs(wildcards):
    provenance = {f"provenance/{k}": v for k, v in provenance_files().items()}
    return {
        "reference": SCORECARD_REFERENCE,
        "claims": "results/summary/tables/claims.md",
        **metrics_tables(),
        **provenance,
    }


def checkout_path(path):
    """A checkout file as an input of a rule, relative to the working directory inside it (a moved
    checkout reruns nothing), absolute outside (oodflow.report.references.rule_input).
    """
    return rule_input(path)


SCORECARD_REFERENCE = checkout_path(
    f"{workflow.basedir}/config/papers/references/scorecard.yaml"
)
# The papers' qualitative findings (oodflow.report.claims), tested on this config's results.
CLAIMS_REGISTRY = checkout_path(
    f"{workflow.basedir}/config/papers/references/claims.yaml"
)


def claims_inputs(wildcards):
    """The registry and every score file / table its claims read for this config's runs."""
    _, claims = oodflow_claims.load_claims(CLAIMS_REGISTRY)
    return {
        "registry": CLAIMS_REGISTRY,
        "files": oodflow_claims_data.files(config, claims),
    }


def claims_params(wildcards):
    """What the claims table depends on besides its files: the bootstrap and its seed."""
    return canonical(
        {"seed": config["seed"], "bootstrap": config["report"]["bootstrap"]}
    )


def page_path(part, table):
    return f"results/report/{part}/{table}.html"


def table_page(part, table, category):
    """The HTML page of Markdown table `table` of results/`part`, for the report (snakemake shows HTML
    inline, not Markdown); written by the rule that writes the table."""
    return report(
        page_path(part, table),
        caption="../report/table.rst",
        category=category,
        subcategory=part,
    )


def table_pages():
    """The HTML pages of this config's Markdown tables (see table_page)."""
    pages = []
    if RUNS:
        names = ["fpr95_auroc", "cross_paper", *(f"compare_{c}" for c in COMPARISONS)]
        pages += [page_path(RESULTS, name) for name in names]
    if ML is not None:
        names = [
            "ml_table",
            "ml_tail",
            *(["ml_oe_selection"] if ML_SEL is not None else []),
        ]
        pages += [page_path(ML_BENCH.name, name) for name in names]
    if OSR:
        pages += [page_path(OSR_NAME, name) for name in OSR_TABLES]
    return pages


def summary_outputs():
    """The reproduction scorecard of every results folder and the claims table (with HTML pages)."""
    return [
        "results/summary/tables/scorecard.md",
        "results/summary/tables/scorecard.csv",
        page_path("summary", "scorecard"),
        "results/summary/tables/claims.csv",
        "results/summary/figures/claims_forest.png",
        page_path("summary", "claims"),
    ]


# Cluster resources (runtime in minutes, mem_mb, cpus_per_task) for a scheduler such as SLURM
# (profiles/slurm); a local run ignores them. A run's `resources` block overrides the estimates of
# oodflow.cluster; a retried job (attempt > 1) gets attempt times the runtime.
def run_resource(name, job="train"):
    """Resource `name` of the run's `job` ("train" or "hpo")."""
    return lambda wildcards, attempt: cluster.run_resources(
        config, wildcards.run, job, attempt
    )[name]


def gan_resource(name):
    return lambda wildcards, attempt: cluster.gan_resources(config, attempt)[name]


def eval_resource(name):
    """Feature extraction, network scores, adversarial evaluation of one run."""
    return lambda wildcards, attempt: cluster.eval_resources(config, attempt)[name]


def osr_resource(name, job="train"):
    """Resource `name` of an OSR benchmark's method: osr_train ("train") or osr_eval ("eval")."""
    return lambda wildcards, attempt: cluster.osr_resources(
        config,
        wildcards.osr_ds,
        wildcards.family,
        int(wildcards.trial),
        wildcards.osr_method,
        job,
        attempt,
    )[name]


def ml_resource(name, job="train", sets=(), run=None):
    """Resource `name` of a multi-label run's job: ml_train ("train"), or one forward pass
    over the stored `sets` ("extract": ml_extract, ml_oe_features); `run`: the wildcard's.
    """
    return lambda wildcards, attempt: cluster.ml_resources(
        config, run or wildcards.mlrun, job, tuple(sets), attempt
    )[name]
