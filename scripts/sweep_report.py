"""Metrics of one sweep's runs against the swept value (table and figure)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.sweep_report(sm.config, sm.wildcards.sweep, sm.input[0], sm.output.csv, sm.output.png)
