# oodflow: OOD detection benchmarks as one Snakemake DAG. Rules live in rules/*.smk.
from snakemake.utils import min_version

min_version("9.0")


# A config given with --configfile replaces the default one (Snakemake would otherwise merge them, and
# the default's runs and scores would leak into a paper config).
# The default config is checked first, so that a YAML error in it names the file and the line
# (Snakemake's own message names neither; for a --configfile, run `python -m oodflow.config FILE`).
if not workflow.config_settings.configfiles:
    import os
    import sys

    sys.path.insert(0, f"{workflow.basedir}/src")
    from oodflow.config import ConfigError, read as read_config

    try:
        if os.path.exists("config/config.yaml"):  # Snakemake skips a missing one
            read_config("config/config.yaml")
    except ConfigError as err:
        raise WorkflowError(str(err)) from None

    configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/osr_common.smk"
include: "rules/multilabel_common.smk"
include: "rules/data.smk"
include: "rules/datasets.smk"
include: "rules/gan.smk"
include: "rules/hpo.smk"
include: "rules/train.smk"
include: "rules/features.smk"
include: "rules/scores.smk"
include: "rules/report.smk"
include: "rules/adversarial.smk"
include: "rules/osr.smk"
include: "rules/multilabel.smk"


rule all:
    default_target: True
    input:
        final_outputs(),


# What a paper's DVC stage builds (papers/dvc.yaml, docs/dvc.md): everything this config writes into
# its own results folders, without the scorecard of all folders (results/summary, the default stage's).
rule config_results:
    input:
        [p for p in final_outputs() if p not in summary_outputs()],
        [f"results/{folder}/provenance.json" for folder in config_parts()],
