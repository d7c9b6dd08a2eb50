"""Score histograms of the two compared runs, one row per OOD set."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
wc = sm.wildcards
steps.comparison_figure(
    sm.config, wc.comparison, wc.score, sm.input.baseline, sm.input.candidate, sm.output[0]
)
