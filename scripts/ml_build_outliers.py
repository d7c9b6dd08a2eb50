"""Build one multi-label OOD test set or OE pool."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow.multilabel import steps  # noqa: E402

sm = snakemake  # noqa: F821
folders = {k: v for k, v in sm.input.items() if k in ("prepared", "raw")}
steps.build_outliers(
    sm.config, sm.wildcards.kind, sm.wildcards.name, sm.output.npz, folders or None, sm.threads
)
