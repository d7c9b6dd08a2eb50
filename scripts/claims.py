"""The claims table: each paper's qualitative finding tested on this config's results, and its forest plot."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.claims(sm.config, sm.input.registry, dict(sm.output.items()))
steps.table_html(sm.output.md, sm.output.html)
