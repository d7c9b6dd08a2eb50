"""oodflow.io: atomic writes leave nothing behind, not even after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from oodflow.io import atomic_path, write_text


def test_a_killed_write_leaves_a_part_file_that_the_next_write_sweeps(tmp_path):
    """SIGKILL in the middle of an atomic write (as a killed Snakemake job): the target is untouched and
    a .part file is left; the rerun's write of the same file removes it, so the folder ends as an
    uninterrupted run leaves it (what makes a killed-and-rerun results/ byte-identical)."""
    target = tmp_path / "figures" / "hist.png"
    write_text(target, "old")
    code = textwrap.dedent(f"""
        import time
        from oodflow.io import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_text("half")
            print("writing", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    left = sorted(p.name for p in target.parent.iterdir())
    assert target.read_text() == "old" and len(left) == 2 and left[0].startswith(".hist.png.")
    write_text(target, "new")
    assert sorted(p.name for p in target.parent.iterdir()) == ["hist.png"]
    assert target.read_text() == "new"


def test_only_the_same_files_stale_parts_are_swept(tmp_path):
    other = tmp_path / ".other.png.x1.part"
    other.write_text("another file's write in progress")
    write_text(tmp_path / "hist.png", "x")
    assert other.exists()


def test_a_failed_block_leaves_neither_target_nor_part(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "a.json") as tmp:
        tmp.write_text("partial")
        raise RuntimeError("job failed")
    assert list(tmp_path.iterdir()) == []
