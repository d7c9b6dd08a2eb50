"""Adversarial OOD metrics (FGSM over the eps list) of one run."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
ood = {k[len("ood_") :]: v for k, v in sm.input.items() if k.startswith("ood_")}
steps.adversarial_eval(
    sm.config, sm.wildcards.run, sm.input.model, sm.input.id, ood, sm.output[0], threads=sm.threads
)
