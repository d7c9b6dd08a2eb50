"""The ranked OE-set table (dilation distance)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow.multilabel import steps  # noqa: E402
from oodflow.steps import table_html  # noqa: E402

sm = snakemake  # noqa: F821
candidates = {k: v for k, v in sm.input.items() if k != "train"}
steps.oe_selection(sm.config, sm.input.train, candidates, sm.output.csv, sm.output.md)
table_html(sm.output.md, sm.output.html)
