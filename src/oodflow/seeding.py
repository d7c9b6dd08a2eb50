"""Seeds and determinism switches (PyTorch reproducibility notes; torchvision references)."""

from __future__ import annotations

import hashlib
import os
import random

import numpy as np


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any parts (ints, strings); never uses Python's salted ``hash``."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def seed_everything(seed: int) -> None:
    """Seed ``random``, NumPy and torch (CPU and every CUDA device)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_determinism(threads: int | None = None) -> None:
    """Deterministic algorithms everywhere; a fixed intra-op thread count (results depend on it)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def resolve_device(name: str = "auto") -> torch.device:  # noqa: F821
    """``auto`` picks CUDA when present, else CPU; asking for CUDA without one is an error.

    With several GPUs visible, the job claims one of its own (:func:`oodflow.devices.claim`: the first
    that no other job holds) and makes it the current device, so that parallel GPU jobs spread over
    the devices instead of all landing on ``cuda:0``.
    """
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but torch.cuda.is_available() is False")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name != "cuda":
        return torch.device(name)
    count = torch.cuda.device_count()
    if count == 1:
        return torch.device("cuda:0")
    from oodflow import devices

    index = devices.claim(devices.visible_ids(count), wait=600)
    torch.cuda.set_device(index)
    return torch.device(f"cuda:{index}")
