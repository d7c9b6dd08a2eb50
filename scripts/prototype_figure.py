"""2-D PCA of a prototype run's ID embeddings, its prototypes and one OOD set."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.prototype_figure(sm.config, sm.wildcards.run, sm.input.train, sm.input.ood, sm.params.ood, sm.output[0])
