"""The OSR training loop: flat, seeded, deterministic, resumable (like :mod:`oodflow.training`).

Everything random in epoch ``e`` is drawn from generators seeded by ``(seed, benchmark, e)``: the
batch order of each pass, the crop/flip augmentation, and (through torch's global generator) dropout
and the GAN latents. A run killed after epoch ``e`` resumes from its per-epoch checkpoint (written
only for an equal config) and ends with the same weights as an uninterrupted run.

The classifier's initial weights depend on the benchmark only, not on the method: softmax, ARPL and
DIAS of one trial start from the same classifier. As the reference, training has no validation split
and no model selection: the model after the last epoch is evaluated, once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from oodflow import checkpoint
from oodflow.osr import build_method
from oodflow.osr.data import to_input
from oodflow.osr.methods import OSRMethod
from oodflow.osr.splits import dataset as osr_dataset
from oodflow.seeding import derive_seed
from oodflow.training import augment


def _benchmark_key(config: Mapping[str, Any]) -> tuple[str, str, int]:
    b = config["benchmark"]
    return b["dataset"], b["family"], b["trial"]


def make_method(config: Mapping[str, Any], num_classes: int, device: torch.device | str = "cpu") -> OSRMethod:
    """The method of ``config`` with its seeded initial weights (classifier first, then the rest)."""
    torch.manual_seed(derive_seed(config["seed"], "osr-init", *_benchmark_key(config)))
    method = build_method(config["method"], num_classes, config["train"], **config["method_args"])
    return method.to(device)


def train(
    config: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    *,
    device: torch.device,
    checkpoint_path: str | Path,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
) -> tuple[OSRMethod, list[dict[str, float]]]:
    """Train ``config`` (``seed``, ``benchmark``, ``method``, ``method_args``, ``train``) on the stored
    benchmark ``arrays``; returns the method (its networks) and one log row per epoch."""
    tr, key = config["train"], _benchmark_key(config)
    x = torch.from_numpy(to_input(arrays["train_x"]))
    y = torch.from_numpy(np.asarray(arrays["train_y"], dtype=np.int64))
    num_classes = int(config["benchmark"]["num_known"])
    method = make_method(config, num_classes, device)
    rows: list[dict[str, float]] = []
    start = 0
    state = checkpoint.load_matching(checkpoint_path, config, map_location=device, log=log)
    if state is not None:
        rows, start = checkpoint.resume(state, {"model": method})
        log(f"resuming from {checkpoint_path} after epoch {start}")
    policy = "crop_flip" if osr_dataset(key[0]).augment and tr["augment"] else None
    bar = tqdm(range(start, tr["epochs"]), desc=f"osr {config['method']} {'/'.join(map(str, key))}",
               mininterval=2.0, file=sys.stderr)  # fmt: skip
    for epoch in bar:
        torch.manual_seed(derive_seed(config["seed"], "osr-torch", *key, config["method"], epoch))
        method.train_mode()
        row: dict[str, float] = {"epoch": epoch + 1, "lr": method.optimizers["net"].param_groups[0]["lr"]}
        for p, phase in enumerate(method.passes):
            gen = torch.Generator().manual_seed(derive_seed(config["seed"], "osr-batches", *key, epoch, p))
            order = torch.randperm(len(y), generator=gen)
            sums: dict[str, float] = {}
            seen = 0
            for i in range(0, len(order), tr["batch_size"]):
                idx = order[i : i + tr["batch_size"]]
                if len(idx) < 2:  # batch norm cannot train on a single image
                    continue
                xb = x[idx] if policy is None else augment(x[idx], policy, gen)
                losses = method.step(phase, xb.to(device), y[idx].to(device))
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v * len(idx)
                seen += len(idx)
            row.update({f"{phase}_{k}": v / max(seen, 1) for k, v in sums.items()})
        method.end_epoch()
        rows.append(row)
        bar.set_postfix(loss=f"{row.get(f'{method.passes[-1]}_loss', float('nan')):.3f}")
        log(", ".join(f"{k}={v:.6g}" for k, v in row.items()))
        checkpoint.save_epoch(checkpoint_path, config, epoch, rows, {"model": method})
    method.eval_mode()
    return method, rows


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[OSRMethod, dict[str, Any]]:
    """Rebuild a trained method from its final ``model.pt`` (eval mode); returns (method, payload)."""
    payload = checkpoint.load(path, map_location=device)
    config = payload["config"]
    try:
        method = make_method(config, int(config["benchmark"]["num_known"]), device)
        method.load_inference_state(payload["model"])
    except (KeyError, RuntimeError) as err:
        raise ValueError(f"{path}: checkpoint does not match its recorded OSR method ({err})") from None
    method.eval_mode()
    return method, payload
