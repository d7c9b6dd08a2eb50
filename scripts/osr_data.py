"""Build one OSR benchmark's known/unknown arrays (with its known-label mapping)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
w = sm.wildcards
steps.osr_data(
    sm.config, w.osr_ds, w.family, int(w.trial), dict(sm.input.items()), sm.output.npz, sm.output.sidecar
)
