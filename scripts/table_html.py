"""A Markdown table as a self-contained HTML page (for snakemake --report)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.table_html(sm.input[0], sm.output[0], title=f"{sm.wildcards.part}: {sm.wildcards.table}")
