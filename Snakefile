# oodflow: OOD detection benchmarks as one Snakemake DAG. Rules live in rules/*.smk.
from snakemake.utils import min_version

min_version("9.0")


# A config given with --configfile replaces the default one (Snakemake would otherwise merge them, and
# the default's runs and scores would leak into a paper config).
if not workflow.config_settings.configfiles:

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
