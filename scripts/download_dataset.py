"""Download one verified resource of a catalog dataset."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (snakemake is injected)
sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (this checkout's library)

from oodflow import steps  # noqa: E402

sm = snakemake  # noqa: F821
steps.download(sm.wildcards.ds, sm.wildcards.filename, sm.output[0], smoke=sm.params.smoke)
