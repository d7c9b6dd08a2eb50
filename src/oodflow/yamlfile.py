"""YAML reading with libyaml's C parser where PyYAML has it (10x faster than the pure-Python one,
which matters for the Snakefile: the schema is read on every ``snakemake`` call)."""

from __future__ import annotations

from typing import Any

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` of ``text`` (same types, same :class:`yaml.YAMLError` on bad input)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader)
