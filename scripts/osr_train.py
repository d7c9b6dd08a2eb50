"""Train one OSR method on one benchmark (resumes from its last checkpoint)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
w = sm.wildcards
steps.osr_train(
    sm.config, w.osr_ds, w.family, int(w.trial), w.osr_method,
    sm.input.data, sm.output.model, sm.params.checkpoint, threads=sm.threads,
)  # fmt: skip
