"""Extract once, score many: one forward pass caches logits and penultimate features."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.inference_mode()
def extract(
    model: nn.Module, x: np.ndarray, batch_size: int = 512, device: torch.device | str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(logits (N, K), features (N, D))`` as float32 for model-ready inputs ``x``.

    The model must follow the :class:`oodflow.models.base.OODNet` contract: ``features(x)`` is what
    the final linear ``head`` receives, so ``logits == head(features)``.
    """
    model.eval()
    logits, feats = [], []
    for i in range(0, len(x), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])).to(device)
        f = model.features(batch)
        logits.append(model.head(f).float().cpu())
        feats.append(f.float().cpu())
    return torch.cat(logits).numpy(), torch.cat(feats).numpy()


@torch.inference_mode()
def extract_prototype(
    model: nn.Module, method, x: np.ndarray, batch_size: int = 512, device: torch.device | str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(class logits (N, C), unit head embeddings (N, d))`` of a prototype method
    (:class:`oodflow.methods.prototypes.MultiPrototype`) for model-ready inputs ``x``."""
    model.eval()
    logits, emb = [], []
    for i in range(0, len(x), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])).to(device)
        z = method.embed(model, batch)
        logits.append(method.class_logits(z).float().cpu())
        emb.append(z.float().cpu())
    return torch.cat(logits).numpy(), torch.cat(emb).numpy()
