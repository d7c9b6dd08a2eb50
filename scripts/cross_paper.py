"""Cross-paper table: every run (seeds pooled) x score with bootstrap intervals, and its ranking figure."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402
from oodflow.report.tables import run_scores  # noqa: E402

sm = snakemake  # noqa: F821
pairs = [(r, s) for r in sm.config["runs"] for s in run_scores(sm.config, r)]
steps.cross_paper(sm.config, dict(zip(pairs, sm.input, strict=True)), dict(sm.output.items()))
steps.table_html(sm.output.md, sm.output.html)
