"""Build the auxiliary outlier pool (for outlier exposure)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.build_aux(sm.config, sm.output.npz)
