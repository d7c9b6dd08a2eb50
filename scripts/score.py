"""Compute one score for every evaluated set of one run."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
caches = {k[len("cache_") :]: v for k, v in sm.input.items() if k.startswith("cache_")}
data = {k[len("data_") :]: v for k, v in sm.input.items() if k.startswith("data_")}
steps.score(
    sm.config,
    sm.wildcards.score,
    sm.input.get("model"),
    sm.input.train,
    caches,
    data,
    sm.output[0],
    threads=sm.threads,
)
