"""The reproduction scorecard: every reported number of the five papers beside ours."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
inputs = {name: path for name, path in sm.input.items() if name not in ("reference", "claims")}
provenance = {k.split("/", 1)[1]: v for k, v in inputs.items() if k.startswith("provenance/")}
tables = {k: v for k, v in inputs.items() if not k.startswith("provenance/")}
steps.scorecard(sm.input.reference, tables, sm.output.md, sm.output.csv, provenance, sm.input.claims)
steps.table_html(sm.output.md, sm.output.html)
