"""Run this checkout's Snakefile in another working directory, as a user would (tests only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def snakemake(
    workdir: Path, *args: str, cores: int = 2, env: dict | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """``snakemake -s <repo>/Snakefile --directory workdir --cores N *args`` (raises if ``check`` fails)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--cores", str(cores), *args]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
