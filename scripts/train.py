"""Train one run (resumes from its last checkpoint)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

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
    aux_npz=sm.input.get("aux"),
    init_pt=sm.input.get("init"),
    best_json=sm.input.get("best"),
    holdout_npz=sm.input.get("holdout"),
    weights=sm.input.get("weights"),
)
