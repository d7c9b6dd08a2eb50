"""Sample the trained DCGAN with latent N(0, sigma^2) into a GAN sample file."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.sample_gan(sm.config, sm.input.model, sm.wildcards.sigma, sm.output[0], sm.threads)
