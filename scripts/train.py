"""Train one run (resumes from its last checkpoint)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.train(
    sm.config,
    sm.wildcards.run,
    sm.input.train,
    sm.input.val,
    sm.output.model,
    sm.output.log,
    sm.params.checkpoint,
    threads=sm.threads,
)
