"""Cache logits, features and targets of every set of one run (rule ml_extract)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow.multilabel import steps  # noqa: E402

sm = snakemake  # noqa: F821
run = sm.wildcards.get("mlrun") or sm.config["multilabel"]["oe_selection"]["run"]
data = {k[len("data_") :]: v for k, v in sm.input.items() if k.startswith("data_")}
outs = {k[len("cache_") :]: v for k, v in sm.output.items() if k.startswith("cache_")}
steps.extract(
    sm.config, run, sm.input.get("model"), data, outs, threads=sm.threads, weights=sm.input.get("weights")
)
