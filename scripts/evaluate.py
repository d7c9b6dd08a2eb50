"""Long-form metrics of every (run, score, OOD set)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
runs, scores = list(sm.config["runs"]), list(sm.config["scores"])
score_files = {(r, s): f for (r, s), f in zip([(r, s) for r in runs for s in scores], sm.input.scores)}
steps.evaluate(
    sm.config, score_files, dict(zip(runs, sm.input.caches)), sm.output.csv, sm.output.json, sm.output.draws
)
