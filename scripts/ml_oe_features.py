"""Cache the backbone features of every OE-selection set (rule ml_oe_features)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow.multilabel import steps  # noqa: E402

sm = snakemake  # noqa: F821
data = {k[len("data_") :]: v for k, v in sm.input.items() if k.startswith("data_")}
outs = {k[len("cache_") :]: v for k, v in sm.output.items() if k.startswith("cache_")}
model, weights = sm.input.get("model"), sm.input.get("weights")
steps.oe_features(sm.config, model, data, outs, threads=sm.threads, weights=weights)
