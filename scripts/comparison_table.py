"""A two-run comparison table (baseline vs candidate per OOD set, reported numbers beside ours)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
out = sm.output
reference = sm.input.get("reference")
steps.comparison_table(
    sm.config, sm.wildcards.comparison, sm.input.metrics, out.md, out.tex, out.csv, reference or None
)
steps.table_html(out.md, out.html)
