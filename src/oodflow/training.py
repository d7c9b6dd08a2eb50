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
from oodflow.methods.views import make_view
from oodflow.models import build_model, rebuild_args
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


AUGMENTATIONS = ("shift", "crop_flip", "resized_crop_flip")


def augment(x: torch.Tensor, policy: str, generator: torch.Generator) -> torch.Tensor:
    """Apply a benchmark's training augmentation (see ``Benchmark.augment``) to a batch:
    ``shift`` (up to 2 px), ``crop_flip`` (a crop of the image padded by side/8, then a flip) or
    ``resized_crop_flip`` (EDGE's RandomResizedCrop(scale 0.5-2.0) back to the side, then a flip;
    :func:`oodflow.transforms.random_resized_crop`)."""
    if policy == "shift":
        return random_shift(x, 2, generator)
    if policy == "crop_flip":
        x = random_shift(x, x.shape[-1] // 8, generator)  # a crop of the image padded by side/8 (4 px at 32)
        flip = torch.rand(len(x), generator=generator) < 0.5
        return torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
    if policy == "resized_crop_flip":
        from oodflow.transforms import random_resized_crop

        return random_resized_crop(x, generator)
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


def warmup_cosine(step: int, steps: int, warmup: int, min_ratio: float) -> float:
    r"""LR factor of a linear warm-up over ``warmup`` steps (from 0) followed by a cosine from 1 to
    ``min_ratio`` over the remaining steps (PALM/ADAPT: 10 epochs of warm-up, ``min_ratio`` 0.001):
    :math:`t / T_w` for :math:`t < T_w`, else
    :math:`r + (1 - r)\frac{1}{2}(1 + \cos \pi \frac{t - T_w}{T - T_w})`."""
    if step < warmup:
        return step / warmup
    frac = min(step - warmup, steps - warmup) / max(steps - warmup, 1)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * frac))


def make_scheduler(opt: torch.optim.Optimizer, run: Mapping[str, Any], steps: int, steps_per_epoch: int = 1):
    """Per-step schedule: ``none`` (constant), ``cosine`` from lr down to 0 over all steps, or
    ``warmup_cosine`` (:func:`warmup_cosine`; run keys ``warmup_epochs`` (0) and ``min_lr_ratio`` (0)).

    Step ``t`` (0-based) runs with the factor of ``t``. ADAPT's ``train_adapt.py``
    (JINHYUKSUH/ADAPT@b25c9748, ``adjust_learning_rate``) sets the LR *after* each optimiser step, so its
    step ``t`` runs with the factor of ``t - 1`` and its first step with the full lr: run key
    ``lr_after_step: true`` reproduces that for ``warmup_cosine`` (absent: false)."""
    if run["scheduler"] == "warmup_cosine":
        warmup = run.get("warmup_epochs", 0) * steps_per_epoch
        ratio = run.get("min_lr_ratio", 0.0)
        if run.get("lr_after_step", False):
            return torch.optim.lr_scheduler.LambdaLR(
                opt, lambda step: 1.0 if step == 0 else warmup_cosine(step - 1, steps, warmup, ratio)
            )
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine(step, steps, warmup, ratio))
    if run["scheduler"] == "none":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    if run["scheduler"] == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / steps))
        )
    raise ValueError(f"unknown scheduler '{run['scheduler']}'; valid: none, cosine, warmup_cosine")


@torch.inference_mode()
def evaluate(
    model: nn.Module, split: Split, batch_size: int, device: torch.device, method: Any = None
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``split`` (of ``method.predict``'s logits for
    a method that classifies itself, e.g. by its nearest prototype)."""
    model.eval()
    predict = getattr(method, "predict", None)
    if predict is not None:
        method.train(False)
    loss, correct = 0.0, 0
    for i in range(0, len(split), batch_size):
        x, y = split.x[i : i + batch_size].to(device), split.y[i : i + batch_size].to(device)
        logits = model(x) if predict is None else predict(model, x)
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
    weights: str | Path | None = None,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train ``config["run"]`` and return (model, per-epoch log rows).

    ``weights`` is the pretrained weights file of a run whose ``model_args`` set ``pretrained``
    (:func:`oodflow.models.build_model`).

    ``config`` is everything that determines the result (``seed``, ``run`` and the benchmark); it is
    stored in every checkpoint, and a checkpoint is resumed only if its config is equal.
    Methods with ``uses_aux`` (outlier exposure) get a batch of ``aux_split`` per step: the pool is
    shuffled each epoch with the epoch's generator and cycled if it is shorter than the ID data.
    ``init_state`` (fine-tuning) replaces the seeded initial weights. A method with a
    ``set_epoch(epoch, seed)`` hook is told each epoch before its first step (so its randomness can
    follow ``(seed, epoch, step)`` and survive a resume).

    Stateful methods (PALM, ADAPT, ARPL, DIAS): a method with ``setup(model, num_classes, device,
    input_shape)`` builds its own modules and buffers (``input_shape``: one input's ``(C, H, W)``);
    those trained with the model by the loop's optimiser are its ``parameters()`` (PALM's head,
    ARPL's points; DIAS keeps its GAN and copycat with their own optimisers inside and gives none).
    All of it is saved with ``state_dict()`` in every checkpoint, switched with ``train(mode)``, and
    returned as ``model.method_state``. A method with ``predict(model, x)`` classifies the
    validation split itself (no trained head: PALM/ADAPT, ARPL). Contrastive methods add views: a
    method with ``n_views > 1`` gets that many views of each batch (its ``augmentation`` policy,
    :mod:`oodflow.methods.views`; they replace the benchmark's augmentation) stacked along dim 0.
    ``run["amp"]`` turns on mixed precision (autocast + GradScaler) when the device is CUDA.
    ``run["select"] == "min_train_loss"`` returns the weights of the epoch with the lowest mean
    training loss (PALM/ADAPT's checkpoint), not the last.
    With ``run["augment"]`` the outlier batches get the benchmark's augmentation too, unless the
    method's ``augment_outliers`` is false (AOE's default: its reference never transforms the GAN
    outliers). A method with ``skip_partial_batch`` true (AOE's ``grad_wrt_inliers`` quirk, whose step needs
    equal ID and outlier batches) skips the epoch's last, partial ID batch, as the reference loop
    does; the mean training loss and accuracy are then over the samples it trained on.
    """
    run, seed = config["run"], config["seed"]
    policy = BENCHMARKS.get(config["benchmark"]["name"]).augment
    in_channels = train_split.x.shape[1]
    torch.manual_seed(derive_seed(seed, "init"))
    model = build_model(
        run["model"], num_classes=num_classes, in_channels=in_channels, weights=weights, **run["model_args"]
    )
    if init_state is not None:
        model.load_state_dict(init_state)
    model.to(device)
    method = build_method(run["method"], **run["method_args"])
    if method.uses_aux and aux_split is None:
        raise ValueError(f"method '{run['method']}' trains on auxiliary outliers but no aux_split was given")
    stateful = hasattr(method, "setup")
    params = list(model.parameters())
    if stateful:
        method.setup(model, num_classes, device, input_shape=tuple(train_split.x.shape[1:]))
        params += list(method.parameters())
    n_views = getattr(method, "n_views", 1)
    skip_partial = bool(getattr(method, "skip_partial_batch", False))
    augment_aux = bool(getattr(method, "augment_outliers", True))
    select = run.get("select", "last")
    if select not in SELECTIONS:
        raise ValueError(f"unknown checkpoint selection '{select}'; valid: {', '.join(SELECTIONS)}")
    opt = make_optimizer(params, run)
    steps_per_epoch = math.ceil(len(train_split) / run["batch_size"])
    sched = make_scheduler(opt, run, run["epochs"] * steps_per_epoch, steps_per_epoch)
    amp = bool(run.get("amp", False)) and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if amp else None
    rows: list[dict[str, float]] = []
    start = 0
    best: dict[str, Any] | None = None  # the selected epoch's weights (select: min_train_loss)

    checkpoint_path = Path(checkpoint_path)
    state = checkpoint.load_matching(checkpoint_path, config, map_location=device, log=log)
    parts = {"model": model, "optimizer": opt, "scheduler": sched}
    if state is not None:
        rows, start = checkpoint.resume(state, parts)
        if stateful:
            method.load_state_dict(state["method"])
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        best = state.get("best")
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
        if stateful:
            method.train(True)
        total_loss, correct, seen = 0.0, 0, 0
        for i in range(0, len(order), run["batch_size"]):
            idx = order[i : i + run["batch_size"]]
            if skip_partial and len(idx) < run["batch_size"]:
                continue
            x = train_split.x[idx]
            if n_views > 1:
                x = torch.cat(
                    [make_view(x, method.augmentation, gen, method.mean, method.std) for _ in range(n_views)]
                )
            elif run["augment"]:
                x = augment(x, policy, gen)
            x, y = x.to(device), train_split.y[idx].to(device)
            x_aux = None
            if method.uses_aux:
                step = i // run["batch_size"]
                pick = aux_order[(torch.arange(aux_bs) + step * aux_bs) % len(aux_order)]
                x_aux = aux_split.x[pick]
                if run["augment"] and augment_aux:
                    x_aux = augment(x_aux, policy, gen)
                x_aux = x_aux.to(device)
            with torch.autocast("cuda", enabled=amp):
                loss, logits = method(model, x, y, x_aux)
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            sched.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
        val_loss, val_acc = evaluate(model, val_split, 512, device, method if stateful else None)
        row = {
            "epoch": epoch + 1,
            "lr": opt.param_groups[0]["lr"],
            "train_loss": total_loss / max(seen, 1),
            "train_acc": correct / max(seen, 1),
            "val_loss": val_loss,
            "val_acc": val_acc,
        }
        rows.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{val_acc:.4f}")
        log(", ".join(f"{k}={v:.6g}" for k, v in row.items()))
        extra: dict[str, Any] = {}
        if stateful:
            extra["method"] = method.state_dict()
        if scaler is not None:
            extra["scaler"] = scaler.state_dict()
        if select == "min_train_loss":
            if best is None or row["train_loss"] < best["train_loss"]:
                best = {"epoch": epoch, "train_loss": row["train_loss"], "model": _copy(model.state_dict())}
                if stateful:
                    best["method"] = method.state_dict()
            extra["best"] = best
        checkpoint.save_epoch(checkpoint_path, config, epoch, rows, parts, **extra)
    if best is not None:
        log(
            f"selected the weights of epoch {best['epoch'] + 1} "
            f"(lowest mean training loss {best['train_loss']:.6g})"
        )
        model.load_state_dict(best["model"])
        if stateful:
            method.load_state_dict(best["method"])
    if stateful:
        model.method_state = method.state_dict()
    return model, rows


#: Which epoch's weights ``train`` returns: the last, or the lowest mean training loss (PALM/ADAPT).
SELECTIONS = ("last", "min_train_loss")


def _copy(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model from a final ``model.pt``; returns (model in eval mode, payload)."""
    payload = checkpoint.load(path, map_location=device)
    meta, run = payload.get("meta", {}), payload["config"]["run"]
    try:
        model = build_model(
            run["model"],
            num_classes=meta["num_classes"],
            in_channels=meta["in_channels"],
            **rebuild_args(run["model_args"]),
        )
        model.load_state_dict(payload["model"])
    except (KeyError, RuntimeError) as err:
        raise ValueError(f"{path}: checkpoint does not match its recorded model ({err})") from None
    return model.to(device).eval(), payload
