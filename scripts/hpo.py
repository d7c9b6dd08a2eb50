"""Optuna search of one run's hyper-parameters (resumes its stored study)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.hpo(
    sm.config,
    sm.wildcards.run,
    sm.input.train,
    sm.input.val,
    sm.input.aux,
    {key: sm.output[key] for key in ("best", "trials", "holdout", "history", "importance")},
    sm.params.study_db,
    sm.params.checkpoint,
    threads=sm.threads,
    init_pt=sm.input.get("init"),
    weights=sm.input.get("weights"),
)
