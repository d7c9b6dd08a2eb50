"""Histograms and ROC curves of one run."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
from oodflow.report.tables import run_scores  # noqa: E402

scores = sorted(run_scores(sm.config, sm.wildcards.run))  # the order of the rule's files
steps.figures(
    sm.config,
    sm.wildcards.run,
    dict(zip(scores, sm.input)),
    dict(zip(scores, sm.output.hist)),
    dict(zip(scores, sm.output.roc)),
    dict(zip(scores, sm.output.roc_csv)),
)
