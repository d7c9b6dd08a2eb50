"""Build the auxiliary outlier pool (for outlier exposure)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.build_aux(sm.config, sm.output.npz, sm.input.get("prepared"), sm.input.get("raw"), sm.threads)
