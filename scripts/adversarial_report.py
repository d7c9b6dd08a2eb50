"""All runs' adversarial metrics in one table, and the AUROC-vs-eps figure."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.adversarial_report(sm.config, list(sm.input), sm.output.csv, sm.output.png)
