"""All multi-label scores of one run from its feature caches."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow.multilabel import steps  # noqa: E402

sm = snakemake  # noqa: F821
caches = {k: v for k, v in sm.input.items() if k != "train"}
steps.scores(sm.config, sm.input.train, caches, dict(sm.output.items()))
