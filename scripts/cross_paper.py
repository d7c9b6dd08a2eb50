"""Cross-paper table: every run (seeds pooled) x score with bootstrap intervals, and its ranking figure."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
runs, scores = list(sm.config["runs"]), list(sm.config["scores"])
score_files = dict(zip([(r, s) for r in runs for s in scores], sm.input, strict=True))
steps.cross_paper(sm.config, score_files, dict(sm.output.items()))
