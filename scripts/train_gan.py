"""Train the DCGAN of benchmark.gan on the stored ID training set (resumes from its checkpoint)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.train_gan(sm.config, sm.input.train, sm.output.model, sm.output.log, sm.params.checkpoint, sm.threads)
