"""Long-form metrics of every (run, score, OOD set)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
from oodflow.report.tables import run_scores  # noqa: E402

runs = list(sm.config["runs"])
pairs = [(r, s) for r in runs for s in run_scores(sm.config, r)]
score_files = dict(zip(pairs, sm.input.scores, strict=True))
steps.evaluate(
    sm.config, score_files, dict(zip(runs, sm.input.caches)), sm.output.csv, sm.output.json, sm.output.draws
)
