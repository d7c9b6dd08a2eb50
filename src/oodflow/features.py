"""Extract once, score many: one forward pass caches logits and penultimate features."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.inference_mode()
def extract_outputs(
    model: nn.Module,
    x: np.ndarray,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    method=None,
) -> dict[str, np.ndarray]:
    """Return the feature cache's per-sample arrays (float32) for model-ready inputs ``x``:
    ``logits (N, K)``, ``features (N, D)`` and whatever else the method gives.

    Without ``method`` (or for a method without an ``infer`` hook) the model follows the
    :class:`oodflow.models.base.OODNet` contract: ``features(x)`` is what the final linear ``head``
    receives, so ``logits == head(features)``. A trained method with state whose logits are not the
    head's (PALM, ADAPT: nearest prototype; ARPL: reciprocal points; ``HEADLESS_METHODS``) gives them
    itself: ``method.infer(model, batch)`` returns a dict with ``logits``, ``features`` and optional
    further per-sample arrays (PALM/ADAPT: ``embeddings``).
    """
    model.eval()
    infer = getattr(method, "infer", None)
    if infer is not None:
        method.train(False)
    parts: dict[str, list[torch.Tensor]] = {}
    for i in range(0, len(x), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])).to(device)
        if infer is None:
            f = model.features(batch)
            out = {"logits": model.head(f), "features": f}
        else:
            out = infer(model, batch)
        for key, value in out.items():
            parts.setdefault(key, []).append(value.float().cpu())
    return {key: torch.cat(values).numpy() for key, values in parts.items()}


def extract(
    model: nn.Module, x: np.ndarray, batch_size: int = 512, device: torch.device | str = "cpu", method=None
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(logits (N, K), features (N, D))`` as float32 for model-ready inputs ``x`` (see
    :func:`extract_outputs`)."""
    out = extract_outputs(model, x, batch_size=batch_size, device=device, method=method)
    return out["logits"], out["features"]
