"""The GAN outlier pool at one sigma as a stored set (trained samples or the published file)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.gan_pool(
    sm.config,
    sm.wildcards.sigma,
    sm.output.npz,
    samples_npz=sm.input.get("samples"),
    prepared=sm.input.get("prepared"),
)
