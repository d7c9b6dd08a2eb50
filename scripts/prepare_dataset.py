"""Unpack and parse a catalog dataset into the prepared form."""

import json
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.prepare(
    sm.wildcards.ds,
    list(sm.input),
    sm.output.raw,
    sm.output.prepared,
    json.loads(sm.params.parser_args),
    user_dir=sm.params.user_dir,
)
