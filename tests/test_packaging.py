"""Pins stay consistent: the conda env, the pip constraints and pyproject's ranges agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line.strip())
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_conda_env_pins_equal_constraints():
    constraints = _pins((ROOT / "requirements" / "constraints.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "envs" / "oodflow.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = _pins(pip_section)
    assert env_pins, "the conda env pins nothing"
    for name, version in env_pins.items():
        assert constraints.get(name) == version, (
            f"{name}: env {version} vs constraints {constraints.get(name)}"
        )


def test_pinned_versions_satisfy_pyproject_ranges():
    constraints = _pins((ROOT / "requirements" / "constraints.txt").read_text().splitlines())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    requirements = project["dependencies"] + extras["test"] + extras["slurm"]
    for spec in map(Requirement, requirements):
        pinned = constraints.get(spec.name.lower())
        assert pinned is not None, f"{spec.name} is not pinned in requirements/constraints.txt"
        assert spec.specifier.contains(pinned), f"{spec.name}=={pinned} is outside {spec.specifier}"
