"""The multi-label training loop: flat, deterministic and resumable like :mod:`oodflow.training`.

It reuses the spine's pieces (model registry, optimiser, augmentation, checkpoints, seeds) and
differs only where multi-label learning does: multi-hot float targets, one forward pass over the
concatenated ID + OE batch (batch norm sees both, as in EDGE's ``weg.py``), the epoch passed to the
objective (EDGE's beta switch), a OneCycle schedule, and validation by mAP.

Everything random in epoch ``e`` (batch order, OE order, augmentation) is drawn from a generator
seeded by ``(seed, "ml", e)``, so a resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from oodflow import checkpoint
from oodflow.models import build_model
from oodflow.multilabel.metrics import mean_average_precision
from oodflow.multilabel.objectives import build_objective
from oodflow.seeding import derive_seed
from oodflow.training import augment, make_optimizer

LOG_FIELDS = ("epoch", "lr", "train_loss", "val_loss", "val_map")


def make_scheduler(opt: torch.optim.Optimizer, run: Mapping[str, Any], steps_per_epoch: int):
    """Per-step schedule: ``none``, ``cosine`` (lr to 0 over all steps) or ``onecycle``
    (``OneCycleLR(max_lr=lr, pct_start)``, EDGE's schedule for its method)."""
    total = run["epochs"] * steps_per_epoch
    if run["scheduler"] == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=run["lr"], total_steps=total, pct_start=run["pct_start"]
        )
    if run["scheduler"] == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
        )
    if run["scheduler"] == "none":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    raise ValueError(f"unknown scheduler '{run['scheduler']}'; valid: none, cosine, onecycle")


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 512) -> torch.Tensor:
    """Logits of ``x`` in eval mode, on the CPU."""
    model.eval()
    return torch.cat(
        [model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    )


def validate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> tuple[float, float]:
    """(mean BCE, mAP) on a validation split."""
    logits = predict(model, x, device)
    loss = float(F.binary_cross_entropy_with_logits(logits, y.float()))
    return loss, mean_average_precision(y.numpy(), torch.sigmoid(logits).numpy())


def train_ml(
    config: Mapping[str, Any],
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    *,
    num_labels: int,
    device: torch.device,
    checkpoint_path: str | Path,
    augment_policy: str = "shift",
    oe: torch.Tensor | None = None,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
    weights: str | Path | None = None,
    workers: int = 0,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train ``config["run"]`` on ``train = (x, multi-hot y)``; return (model, per-epoch rows).

    ``x`` (and ``oe``, the validation images) are model-ready float32 ``(N, C, H, W)``: a tensor,
    or a :class:`oodflow.multilabel.stream.StoredImages` that converts the rows it is indexed with.
    Each step's ID and OE batch are read by a ``DataLoader`` (``workers`` processes, 0: in this
    one) in the order drawn from the epoch's generator; augmentation stays here, in that order, so
    the result does not depend on ``workers``.

    ``weights``: the pretrained weights file of a ``pretrained`` model (:func:`oodflow.models.build_model`).

    ``oe`` holds the OE images of objectives that use them: each epoch they are permuted and cycled,
    ``oe_batch_size`` per step. ``select: best_val_map`` returns the weights of the epoch with the
    highest validation mAP (EDGE keeps that checkpoint), ``last`` those of the final epoch.
    """
    run, seed = config["run"], config["seed"]
    x_train, y_train = train
    torch.manual_seed(derive_seed(seed, "init"))
    model = build_model(
        run["model"],
        num_classes=num_labels,
        in_channels=x_train.shape[1],
        weights=weights,
        **run["model_args"],
    )
    model.to(device)
    objective = build_objective(run["objective"], **run["objective_args"])
    if objective.uses_oe and oe is None:
        raise ValueError(f"objective '{run['objective']}' trains on OE images but none were given")
    opt = make_optimizer(model.parameters(), run)
    bs, oe_bs = run["batch_size"], run["oe_batch_size"] or run["batch_size"]
    steps = math.ceil(len(x_train) / bs)
    sched = make_scheduler(opt, run, steps)
    rows: list[dict[str, float]] = []
    best: dict[str, Any] = {"map": -math.inf, "state": None}
    start = 0
    state = checkpoint.load_matching(checkpoint_path, config, map_location=device, log=log)
    parts = {"model": model, "optimizer": opt, "scheduler": sched}
    if state is not None:
        rows, start = checkpoint.resume(state, parts)
        best = {"map": float(state["best_map"]), "state": state["best_model"]}
        log(f"resuming from {checkpoint_path} after epoch {start}")
    for epoch in range(start, run["epochs"]):
        gen = torch.Generator().manual_seed(derive_seed(seed, "ml", epoch))
        torch.manual_seed(derive_seed(seed, "ml-torch", epoch))
        order = torch.randperm(len(x_train), generator=gen)
        oe_order = torch.randperm(len(oe), generator=gen) if objective.uses_oe else None
        batches = _Steps(x_train, order, bs, oe if objective.uses_oe else None, oe_order, oe_bs)
        model.train()
        total = 0.0
        for idx, x, x_oe in batch_loader(batches, workers, derive_seed(seed, "ml-loader", epoch)):
            if run["augment"]:
                x = augment(x, augment_policy, gen)
            n_in = len(x)
            if objective.uses_oe:
                if run["augment"]:
                    x_oe = augment(x_oe, augment_policy, gen)
                x = torch.cat([x, x_oe])
            logits = model(x.to(device))
            out = logits[n_in:] if objective.uses_oe else None
            loss = objective(logits[:n_in], y_train[idx].to(device), out, epoch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * n_in
        val_loss, val_map = validate(model, *val, device)
        row = {
            "epoch": epoch + 1,
            "lr": opt.param_groups[0]["lr"],
            "train_loss": total / len(x_train),
            "val_loss": val_loss,
            "val_map": val_map,
        }
        rows.append(row)
        log(", ".join(f"{k}={v:.6g}" for k, v in row.items()))
        if val_map > best["map"]:
            best = {"map": val_map, "state": copy.deepcopy(model.state_dict())}
        checkpoint.save_epoch(
            checkpoint_path, config, epoch, rows, parts, best_map=best["map"], best_model=best["state"]
        )
    if run["select"] == "best_val_map" and best["state"] is not None:
        model.load_state_dict(best["state"])
    return model.eval(), rows


class _Steps(torch.utils.data.Dataset):
    """Step ``s`` of an epoch: the ID rows ``order[s * bs : (s + 1) * bs]`` and the OE batch
    ``oe[oe_order[(s * oe_bs + arange(oe_bs)) % len(oe)]]`` (the pool permuted and cycled)."""

    def __init__(self, x, order, bs, oe=None, oe_order=None, oe_bs=0):
        self.x, self.order, self.bs, self.oe, self.oe_order, self.oe_bs = x, order, bs, oe, oe_order, oe_bs

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.bs)

    def __getitem__(self, step: int):
        idx = self.order[step * self.bs : (step + 1) * self.bs]
        x_oe = None
        if self.oe is not None:
            x_oe = self.oe[self.oe_order[(torch.arange(self.oe_bs) + step * self.oe_bs) % len(self.oe_order)]]
        return idx, self.x[idx], x_oe


def _whole(item):
    return item


def batch_loader(steps: torch.utils.data.Dataset, workers: int, seed: int) -> torch.utils.data.DataLoader:
    """The steps in order, read by ``workers`` processes (0: in this one), two steps ahead each; the
    loader's own seed comes from a generator seeded by ``seed``, not from torch's global RNG (which
    the training draws from)."""
    return torch.utils.data.DataLoader(
        steps,
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        collate_fn=_whole,
        generator=torch.Generator().manual_seed(seed),
        **({"prefetch_factor": 2} if workers else {}),
    )


@torch.inference_mode()
def extract(
    model: nn.Module,
    x: np.ndarray,
    device: torch.device,
    batch_size: int = 256,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(logits, features)`` float32 of model-ready ``x`` in eval mode; ``transform`` (the
    reference's random eval transform, a quirk) is applied to each batch first."""
    model.eval()
    logits, feats = [], []
    for i in range(0, len(x), batch_size):
        batch = x[i : i + batch_size]  # a StoredImages converts the rows it reads
        batch = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(batch))
        if transform is not None:
            batch = transform(batch)
        f = model.features(batch.to(device))
        logits.append(model.head(f).float().cpu())
        feats.append(f.float().cpu())
    if not logits:
        return np.zeros((0, model.num_classes), np.float32), np.zeros((0, model.feature_dim), np.float32)
    return torch.cat(logits).numpy(), torch.cat(feats).numpy()
