"""One job per GPU on a multi-GPU machine: visible devices, and a lock-file pool that hands each job its own.

Snakemake limits how many GPU jobs run at once (every GPU rule declares ``resources: gpu=1``; the
Snakefile sets the ``gpu`` resource to the number of visible GPUs unless ``--resources gpu=N`` says
otherwise), but it does not say *which* GPU a job gets: without more, every job would land on
``cuda:0``. :func:`claim` picks the device: the first visible GPU whose lock file no other process
holds, locked with ``flock`` for the rest of the process's life. The kernel releases the lock when the
process ends, however it ends (a killed job frees its GPU), so there is no stale state to clean up.

Locks are named by the device's id as the job sees it in ``CUDA_VISIBLE_DEVICES`` (an index or a
``GPU-<uuid>``), so jobs that a scheduler such as SLURM has already given different devices never
wait on each other, and jobs that see the same devices share one pool. The pool's folder is
``OODFLOW_GPU_LOCKS`` (default: ``oodflow-gpu-locks-<uid>`` in the temporary directory).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Open lock files of the devices this process holds (kept open: closing one releases its device).
_HELD: dict[str, int] = {}


def lock_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    default = Path(tempfile.gettempdir()) / f"oodflow-gpu-locks-{os.getuid()}"
    return Path(env.get("OODFLOW_GPU_LOCKS") or default)


def visible_ids(count: int, environ: Mapping[str, str] | None = None) -> list[str]:
    """The ids of the ``count`` devices torch sees, as ``CUDA_VISIBLE_DEVICES`` names them (else 0..)."""
    env = os.environ if environ is None else environ
    listed = [d.strip() for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed[:count] if len(listed) >= count else [str(i) for i in range(count)]


def count_without_torch(dev: str | os.PathLike = "/dev", environ: Mapping[str, str] | None = None) -> int:
    """How many NVIDIA GPUs this machine shows (``/dev/nvidia<N>``, narrowed by ``CUDA_VISIBLE_DEVICES``),
    without importing torch (the workflow sizes the ``gpu`` resource with it while parsing)."""
    env = os.environ if environ is None else environ
    devices = [p for p in Path(dev).glob("nvidia*") if re.fullmatch(r"nvidia\d+", p.name)]
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return min(len(devices), len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"]))
    return len(devices)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def claim(ids: Sequence[str], folder: str | os.PathLike | None = None, *, wait: float = 0.0,
          poll: float = 1.0) -> int:  # fmt: skip
    """Lock the first free device of ``ids`` for this process; return its index into ``ids``.

    A device this process already holds is returned again. With every device taken, polls for up to
    ``wait`` seconds (Snakemake's ``gpu`` resource normally keeps that from happening).

    Raises:
        RuntimeError: if no device came free in time; it names the lock folder.
    """
    import fcntl

    if not ids:
        raise ValueError("no devices to claim from")
    for i, dev in enumerate(ids):
        if dev in _HELD:
            return i
    root = Path(folder) if folder is not None else lock_dir()
    root.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        for i, dev in enumerate(ids):
            fd = os.open(root / f"{_safe(dev)}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            _HELD[dev] = fd
            return i
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"all {len(ids)} GPUs ({', '.join(ids)}) are held by other jobs (lock files in {root}); "
                "run at most that many GPU jobs at once (snakemake --resources gpu=N)"
            )
        time.sleep(poll)


def release(ids: Sequence[str] | None = None) -> None:
    """Give back the devices of ``ids`` this process holds (all of them by default)."""
    for dev in list(_HELD if ids is None else ids):
        fd = _HELD.pop(dev, None)
        if fd is not None:
            os.close(fd)
