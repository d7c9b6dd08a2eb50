"""Every paper config end to end at toy scale on format-exact fakes (``python -m pytest -m smoke``).

Each test is what ``python -m oodflow.smoke config/papers/<x>.yaml`` does: shrink the config, fake every
dataset it needs into a smoke mirror, run the whole Snakemake DAG through the real download, unpack and
parse steps, and check the outputs (:func:`oodflow.smoke.run.check`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oodflow.smoke import run as smoke

ROOT = Path(__file__).resolve().parents[1]
PAPER_CONFIGS = sorted((ROOT / "config" / "papers").glob("*.yaml"))


@pytest.fixture(scope="session")
def shared_resources(tmp_path_factory) -> Path:
    """One resources/ folder for every smoke: each fake dataset is downloaded and prepared once."""
    return tmp_path_factory.mktemp("smoke-resources")


@pytest.mark.smoke
@pytest.mark.parametrize("config", PAPER_CONFIGS, ids=[p.stem for p in PAPER_CONFIGS])
def test_paper_config_smoke(config, tmp_path, shared_resources):
    s = smoke.setup(config, tmp_path / "work", resources=shared_resources)
    proc = smoke.snakemake(s, capture=True, timeout=900)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    assert smoke.check(s) == []
