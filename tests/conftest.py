"""Shared fixtures: the repository root and a loaded default config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def default_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


@pytest.fixture
def test_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
