"""Headline metrics of one results folder: headline/<run>.json (oodflow.report.headline)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow.report import headline  # noqa: E402

sm = snakemake  # noqa: F821
headline.write(sm.config, sm.params.part, sm.input[0], list(sm.output))
