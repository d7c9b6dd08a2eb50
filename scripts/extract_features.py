"""Cache logits and features of every set of one run (one model load)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.extract(sm.config, sm.input.model, list(sm.input.data), list(sm.output), threads=sm.threads)
