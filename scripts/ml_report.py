"""The multi-label table, the tail-ID table and the tail-ID figure."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow.multilabel import steps  # noqa: E402
from oodflow.steps import table_html  # noqa: E402

sm = snakemake  # noqa: F821
o = sm.output
steps.report(sm.config, sm.input.metrics, sm.input.tail, o.md, o.tex, o.tail_md, o.tail_png)
table_html(o.md, o.html)
table_html(o.tail_md, o.tail_html)
