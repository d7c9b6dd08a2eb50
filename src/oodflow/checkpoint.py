"""Checkpoints: atomic saves that carry their config, safe loads (``weights_only=True``)."""

from __future__ import annotations

import io
import os
import pickle
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from oodflow.io import FormatError, write_bytes

REQUIRED_KEYS = ("model", "config")


def _canonical(obj: Any) -> Any:
    """Rebuild plain containers with interned strings.

    Pickle shares repeated string objects through its memo, so two equal payloads can serialise to
    different bytes when one holds strings freshly unpickled from a checkpoint (a resumed run) and
    the other holds the interned literals of the code. Interning makes equal payloads equal bytes.
    """
    if isinstance(obj, str):
        return sys.intern(obj)
    if type(obj) is dict:
        return {_canonical(k): _canonical(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(_canonical(v) for v in obj)
    return obj


def save(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Serialise ``payload`` (tensors, plain Python values) and move it onto ``path`` atomically.

    Equal payloads give equal bytes (see :func:`_canonical`), so results can be compared by hash.
    """
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise ValueError(f"checkpoint payload lacks {missing}")
    buf = io.BytesIO()
    torch.save(_canonical(payload), buf)
    write_bytes(path, buf.getvalue())


#: Sentences of torch's errors that advise loading with ``weights_only=False`` (running the file's
#: pickled code) or allow-listing its globals: never passed on for a file that was refused.
_UNSAFE_ADVICE = re.compile(
    r"weights.only|safe_globals|allowlist|trust|arbitrary code|still be loaded|recommended steps|"
    r"PyTorch 2\.6|documentation of torch\.load",
    re.IGNORECASE,
)
_REFUSED_GLOBAL = re.compile(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)")


def describe_load_error(err: BaseException) -> str:
    """``Type: message`` of an error of ``torch.load(weights_only=True)``, without torch's advice to
    retry with ``weights_only=False`` or to allow-list a global (a refused file may hold code that
    would then run)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    if isinstance(err, pickle.UnpicklingError):
        found = _REFUSED_GLOBAL.search(text)
        what = f" (it would call {found.group(1)})" if found else ""
        return f"{type(err).__name__}: refused: it pickles objects other than tensors and plain values{what}"
    sentences = re.split(r"(?<=[.!?])\s+|\n+", text)
    kept = " ".join(s.strip() for s in sentences if s.strip() and not _UNSAFE_ADVICE.search(s))
    return f"{type(err).__name__}: {kept}" if kept else type(err).__name__


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without executing pickled code; errors name the file and the problem."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or unsafe files
        raise FormatError(f"{path}: not a loadable checkpoint ({describe_load_error(err)})") from None
    if not isinstance(payload, dict) or any(k not in payload for k in REQUIRED_KEYS):
        raise FormatError(f"{path}: checkpoint must be a dict with keys {list(REQUIRED_KEYS)}")
    return payload


def load_matching(
    path: str | os.PathLike | None,
    config: Any,
    map_location: str | torch.device = "cpu",
    log: Any = lambda msg: print(msg, file=sys.stderr),
) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if there is one written for ``config`` (to resume from), else
    None; one written for another config is ignored, and so is one that cannot be loaded (cut short
    by a kill or a full disk, or refused as unsafe): ``log`` says so, and training restarts from the
    first epoch (the next epoch's checkpoint replaces the file)."""
    if path is None or not Path(path).exists():
        return None
    try:
        state = load(path, map_location=map_location)
    except FormatError as err:
        log(f"ignoring {err}; it is truncated or unreadable, so training restarts from the first epoch")
        return None
    if state["config"] != config:
        log(f"ignoring {path}: it was written for a different config")
        return None
    return state


def save_epoch(
    path: str | os.PathLike,
    config: Any,
    epoch: int,
    rows: list[dict[str, float]],
    parts: Mapping[str, Any],
    **extra: Any,
) -> None:
    """The resumable checkpoint after ``epoch`` of a training loop: ``parts[key].state_dict()`` under
    each key (model, optimisers, schedules, ...), then the epoch, the config, the log rows so far and
    ``extra`` (loop-specific values); :func:`resume` restores it."""
    states = {key: part.state_dict() for key, part in parts.items()}
    save(path, {**states, "epoch": epoch, "config": dict(config), "log": rows, **extra})


def resume(state: Mapping[str, Any], parts: Mapping[str, Any]) -> tuple[list[dict[str, float]], int]:
    """Load ``parts`` from a checkpoint written by :func:`save_epoch` (see :func:`load_matching`);
    returns the log rows so far and the epoch to continue with."""
    for key, part in parts.items():
        part.load_state_dict(state[key])
    return list(state["log"]), int(state["epoch"]) + 1
