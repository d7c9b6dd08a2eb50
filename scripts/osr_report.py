"""OSR tables (AUROC, OSCR, F1, accuracy; Markdown, LaTeX, CSV), long-form metrics and OSCR curves."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.osr_report(
    sm.config, list(sm.input.evals), list(sm.input.curves), sm.input.get("reference"),
    str(Path(sm.output.metrics).parent), sm.output.figure,
)  # fmt: skip
for page in sm.output.html:
    steps.table_html(f"{Path(sm.output.metrics).parent}/{Path(page).stem}.md", page)
