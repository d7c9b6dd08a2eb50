"""Paper-style tables (Markdown, LaTeX)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.tables(sm.input[0], sm.output.md, sm.output.tex)
steps.table_html(sm.output.md, sm.output.html)
