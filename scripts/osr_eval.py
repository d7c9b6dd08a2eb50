"""Evaluate one trained OSR model: feature cache, AUROC / OSCR / F1 / accuracy, post-hoc scores."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
out = sm.output
steps.osr_eval(sm.config, sm.input.model, sm.input.data, out.cache, out.eval, out.oscr, threads=sm.threads)
