"""Train one multi-label run (resumes from its last checkpoint)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow.multilabel import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.train(
    sm.config,
    sm.wildcards.mlrun,
    sm.input.train,
    sm.input.val,
    sm.output.model,
    sm.output.log,
    sm.params.checkpoint,
    oe_npz=sm.input.get("oe"),
    threads=sm.threads,
    weights=sm.input.get("weights"),
)
