"""Compute every post-hoc score of one run from its feature caches (one job per run)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
caches = {k[len("cache_") :]: v for k, v in sm.input.items() if k.startswith("cache_")}
steps.posthoc_scores(sm.config, list(sm.params.names), sm.input.train, caches, list(sm.output))
