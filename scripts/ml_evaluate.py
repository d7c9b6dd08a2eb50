"""Multi-label metrics (mAP, OOD metrics per score and set) and the tail-ID metrics."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow.multilabel import steps  # noqa: E402

sm = snakemake  # noqa: F821
ml = sm.config["multilabel"]
runs, scores = list(ml["runs"]), list(ml["scores"])
files = {(r, s): f for (r, s), f in zip([(r, s) for r in runs for s in scores], sm.input.scores, strict=True)}
caches = dict(zip(runs, sm.input.caches, strict=True))
steps.evaluate(sm.config, files, caches, sm.input.train, sm.output.csv, sm.output.tail, sm.output.json)
