"""A flat, deterministic, resumable training loop (torchvision-references style).

Determinism and resumption rest on one rule: everything random in epoch ``e`` (batch order, shift
augmentation, dropout) is drawn from generators seeded by ``(seed, e)``. A run killed after epoch
``e`` and resumed from its checkpoint therefore replays epochs ``e+1..`` exactly and ends with the
same weights, bit for bit, as an uninterrupted run on the same machine.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from oodflow import checkpoint
from oodflow.data import BENCHMARKS
from oodflow.methods import build_method
from oodflow.models import build_model
from oodflow.seeding import derive_seed

LOG_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc")


@dataclass
class Split:
    """Model-ready inputs ``x`` (N, C, H, W) float32 and labels ``y`` (N,) int64."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to ``max_shift`` pixels in x and y, filling with the batch minimum."""
    if max_shift <= 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=float(x.amin()))
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator)
    rows = (torch.arange(h)[None, :] + dy[:, None])[:, None, :, None]
    cols = (torch.arange(w)[None, :] + dx[:, None])[:, None, None, :]
    batch = torch.arange(n)[:, None, None, None]
    chans = torch.arange(c)[None, :, None, None]
    return padded[batch, chans, rows.to(x.device), cols.to(x.device)]


AUGMENTATIONS = ("shift", "crop_flip")


def augment(x: torch.Tensor, policy: str, generator: torch.Generator) -> torch.Tensor:
    """Apply a benchmark's training augmentation (see ``Benchmark.augment``) to a batch."""
    if policy == "shift":
        return random_shift(x, 2, generator)
    if policy == "crop_flip":
        x = random_shift(x, x.shape[-1] // 8, generator)  # a crop of the image padded by side/8 (4 px at 32)
        flip = torch.rand(len(x), generator=generator) < 0.5
        return torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
    raise ValueError(f"unknown augmentation '{policy}'; valid: {', '.join(AUGMENTATIONS)}")


def make_optimizer(params, run: Mapping[str, Any]) -> torch.optim.Optimizer:
    if run["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=run["lr"], weight_decay=run["weight_decay"])
    if run["optimizer"] == "sgd":
        return torch.optim.SGD(
            params,
            lr=run["lr"],
            momentum=run["momentum"],
            nesterov=run["momentum"] > 0,
            weight_decay=run["weight_decay"],
        )
    raise ValueError(f"unknown optimizer '{run['optimizer']}'; valid: adam, sgd")


def make_scheduler(opt: torch.optim.Optimizer, run: Mapping[str, Any], steps: int):
    """Per-step schedule: ``none`` (constant) or ``cosine`` from lr down to 0 over all steps."""
    if run["scheduler"] == "none":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    if run["scheduler"] == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / steps))
        )
    raise ValueError(f"unknown scheduler '{run['scheduler']}'; valid: none, cosine")


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, batch_size: int, device: torch.device) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``split``."""
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(split), batch_size):
        x, y = split.x[i : i + batch_size].to(device), split.y[i : i + batch_size].to(device)
        logits = model(x)
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
    return loss / len(split), correct / len(split)


def train(
    config: Mapping[str, Any],
    train_split: Split,
    val_split: Split,
    *,
    num_classes: int,
    device: torch.device,
    checkpoint_path: str | Path,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
    aux_split: Split | None = None,
    init_state: Mapping[str, torch.Tensor] | None = None,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train ``config["run"]`` and return (model, per-epoch log rows).

    ``config`` is everything that determines the result (``seed``, ``run`` and the benchmark); it is
    stored in every checkpoint, and a checkpoint is resumed only if its config is equal.
    Methods with ``uses_aux`` (outlier exposure) get a batch of ``aux_split`` per step: the pool is
    shuffled each epoch with the epoch's generator and cycled if it is shorter than the ID data.
    ``init_state`` (fine-tuning) replaces the seeded initial weights. A method with a
    ``set_epoch(epoch, seed)`` hook is told each epoch before its first step (so its randomness can
    follow ``(seed, epoch, step)`` and survive a resume).
    """
    run, seed = config["run"], config["seed"]
    policy = BENCHMARKS.get(config["benchmark"]["name"]).augment
    in_channels = train_split.x.shape[1]
    torch.manual_seed(derive_seed(seed, "init"))
    model = build_model(run["model"], num_classes=num_classes, in_channels=in_channels, **run["model_args"])
    if init_state is not None:
        model.load_state_dict(init_state)
    model.to(device)
    method = build_method(run["method"], **run["method_args"])
    if method.uses_aux and aux_split is None:
        raise ValueError(f"method '{run['method']}' trains on auxiliary outliers but no aux_split was given")
    opt = make_optimizer(model.parameters(), run)
    steps_per_epoch = math.ceil(len(train_split) / run["batch_size"])
    sched = make_scheduler(opt, run, run["epochs"] * steps_per_epoch)
    rows: list[dict[str, float]] = []
    start = 0

    checkpoint_path = Path(checkpoint_path)
    state = checkpoint.load_matching(checkpoint_path, config, map_location=device, log=log)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        rows, start = list(state["log"]), int(state["epoch"]) + 1
        log(f"resuming from {checkpoint_path} after epoch {start}")

    bar = tqdm(
        range(start, run["epochs"]),
        desc=f"train {run['model']}/{run['method']}",
        mininterval=2.0,
        file=sys.stderr,
    )
    for epoch in bar:
        gen = torch.Generator().manual_seed(derive_seed(seed, "batches", epoch))
        torch.manual_seed(derive_seed(seed, "torch", epoch))  # dropout and other in-model randomness
        if hasattr(method, "set_epoch"):  # a method's own randomness (AOE's attacks) follows (seed, epoch)
            method.set_epoch(epoch, seed)
        order = torch.randperm(len(train_split), generator=gen)
        if method.uses_aux:
            aux_order = torch.randperm(len(aux_split), generator=gen)
            aux_bs = method.aux_batch_size
        model.train()
        total_loss, correct = 0.0, 0
        for i in range(0, len(order), run["batch_size"]):
            idx = order[i : i + run["batch_size"]]
            x = train_split.x[idx]
            if run["augment"]:
                x = augment(x, policy, gen)
            x, y = x.to(device), train_split.y[idx].to(device)
            x_aux = None
            if method.uses_aux:
                step = i // run["batch_size"]
                pick = aux_order[(torch.arange(aux_bs) + step * aux_bs) % len(aux_order)]
                x_aux = aux_split.x[pick]
                if run["augment"]:
                    x_aux = augment(x_aux, policy, gen)
                x_aux = x_aux.to(device)
            loss, logits = method(model, x, y, x_aux)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        val_loss, val_acc = evaluate(model, val_split, 512, device)
        row = {
            "epoch": epoch + 1,
            "lr": opt.param_groups[0]["lr"],
            "train_loss": total_loss / len(train_split),
            "train_acc": correct / len(train_split),
            "val_loss": val_loss,
            "val_acc": val_acc,
        }
        rows.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{val_acc:.4f}")
        log(", ".join(f"{k}={v:.6g}" for k, v in row.items()))
        checkpoint.save(
            checkpoint_path,
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "epoch": epoch,
                "config": dict(config),
                "log": rows,
            },
        )
    return model, rows


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model from a final ``model.pt``; returns (model in eval mode, payload)."""
    payload = checkpoint.load(path, map_location=device)
    meta, run = payload.get("meta", {}), payload["config"]["run"]
    try:
        model = build_model(
            run["model"],
            num_classes=meta["num_classes"],
            in_channels=meta["in_channels"],
            **run["model_args"],
        )
        model.load_state_dict(payload["model"])
    except (KeyError, RuntimeError) as err:
        raise ValueError(f"{path}: checkpoint does not match its recorded model ({err})") from None
    return model.to(device).eval(), payload
