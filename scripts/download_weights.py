"""Download one verified pretrained weights file (rule download_weights)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.download_weights(sm.wildcards.weights, sm.output[0], smoke=sm.params.smoke)
