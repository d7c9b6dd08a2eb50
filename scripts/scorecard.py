"""The reproduction scorecard: every reported number of the five papers beside ours."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
tables = {name: path for name, path in sm.input.items() if name != "reference"}
steps.scorecard(sm.input.reference, tables, sm.output.md, sm.output.csv)
steps.table_html(sm.output.md, sm.output.html)
