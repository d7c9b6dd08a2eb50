r"""Adversarial OOD evaluation: OOD metrics of scores on FGSM-perturbed test inputs (AOE's
``adversarial_test_auroc`` in ``logic/eval.py`` of ``2mey10/Adversarial-OE@e8745626``).

Every test input, ID **and** OOD, gets one FGSM step away from class ``target`` (index 1 in the
reference):

.. math:: x' = x + \epsilon\, s \odot \mathrm{sign}\big(\nabla_x \mathrm{CE}(f(x), \mathrm{target})\big)

with ``s`` an optional per-channel scale (``1/std`` puts ``eps`` in pixel units, see
:func:`oodflow.attacks.outlier.pixel_space`; the reference has none: eps is in the units of the
normalised input) and, optionally, a clamp into the valid input range (the reference has none). The
gradient does not depend on ``eps``, so it is computed once per batch and every ``eps`` reuses it.
Scores follow the project convention (higher = more ID) and metrics are those of
:mod:`oodflow.metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from oodflow.metrics import ood_metrics

__all__ = [
    "LOGIT_SCORES",
    "adversarial_auroc_table",
    "adversarial_logits",
    "adversarial_scores",
    "logit_scores",
]

#: The scores computed from the logits alone (the perturbed inputs' features are not kept).
LOGIT_SCORES = ("msp", "maxlogit", "energy")


def adversarial_logits(
    model,
    x,
    eps_list: Sequence[float],
    *,
    target: int = 1,
    batch_size: int = 256,
    eps_scale: float | Sequence[float] | None = None,
    clip: tuple | None = None,
    device=None,
) -> np.ndarray:
    """Logits ``(len(eps_list), N, K)`` of the FGSM-perturbed inputs ``x (N, C, H, W)``.

    Inputs are cast to the model's parameter dtype; the logits keep it (float32 for most models).

    The model runs in eval mode (its mode is restored afterwards); gradients are taken with respect
    to the inputs only, so no parameter's ``.grad`` is touched. ``clip = (lo, hi)`` (numbers or one
    per channel) clamps the perturbed inputs; ``None`` leaves them unclamped, as the reference.
    """
    import torch
    import torch.nn.functional as F

    from oodflow.attacks.outlier import broadcast_like, nonnegative_tensor, value_tensor

    eps_values = [float(e) for e in eps_list]
    if not eps_values or any(not np.isfinite(e) or e < 0 for e in eps_values):
        raise ValueError(f"eps_list must be non-empty finite values >= 0, got {list(eps_list)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    x = torch.as_tensor(x)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"x must be a non-empty batch of inputs, got shape {tuple(x.shape)}")
    first_param = next(model.parameters())
    device = torch.device(device) if device is not None else first_param.device
    scale = nonnegative_tensor(1.0 if eps_scale is None else eps_scale, "eps_scale")
    bounds = None if clip is None else (value_tensor(clip[0], "clip lo"), value_tensor(clip[1], "clip hi"))
    was_training = model.training
    model.eval()
    chunks = []
    try:
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(device=device, dtype=first_param.dtype)
            with torch.inference_mode(False), torch.enable_grad():
                xg = xb.detach().clone().requires_grad_(True)
                logits = model(xg)
                if not 0 <= target < logits.shape[1]:
                    raise ValueError(
                        f"target {target} is not a class index of a {logits.shape[1]}-class model"
                    )
                labels = torch.full((len(xg),), target, dtype=torch.long, device=device)
                step = torch.autograd.grad(F.cross_entropy(logits, labels), xg)[0].sign() * broadcast_like(
                    scale, xb
                )
            per_eps = []
            with torch.no_grad():
                for eps in eps_values:
                    xa = xb + eps * step
                    if bounds is not None:
                        xa = torch.clamp(xa, broadcast_like(bounds[0], xa), broadcast_like(bounds[1], xa))
                    per_eps.append(model(xa).cpu().numpy())
            chunks.append(np.stack(per_eps))
    finally:
        model.train(was_training)
    return np.concatenate(chunks, axis=1)


def logit_scores(logits: np.ndarray, names: Iterable[str] = ("msp", "energy")) -> dict[str, np.ndarray]:
    """Scores (higher = more ID, float64) of logits ``(..., N, K)`` by name, from :mod:`oodflow.scores`."""
    from oodflow.scores import build_score
    from oodflow.scores.base import Cache

    names = list(names)
    bad = [n for n in names if n not in LOGIT_SCORES]
    if bad:
        raise ValueError(f"score(s) {', '.join(bad)} need more than logits; valid: {', '.join(LOGIT_SCORES)}")
    logits = np.asarray(logits)
    flat = logits.reshape(-1, logits.shape[-1])
    cache = Cache(flat, np.zeros((len(flat), 0), flat.dtype), np.zeros(len(flat), np.int64))
    return {n: build_score(n).score(cache).reshape(logits.shape[:-1]) for n in names}


def adversarial_scores(
    model,
    x,
    eps_list: Sequence[float],
    score_fns: Iterable[str] = ("msp", "energy"),
    *,
    target: int = 1,
    batch_size: int = 256,
    eps_scale: float | Sequence[float] | None = None,
    clip: tuple | None = None,
    device=None,
) -> dict[str, np.ndarray]:
    """Scores ``{name: (len(eps_list), N)}`` of the FGSM-perturbed inputs (see :func:`adversarial_logits`)."""
    logits = adversarial_logits(
        model,
        x,
        eps_list,
        target=target,
        batch_size=batch_size,
        eps_scale=eps_scale,
        clip=clip,
        device=device,
    )
    return logit_scores(logits, score_fns)


def adversarial_auroc_table(
    eps_list: Sequence[float],
    id_scores: Mapping[str, np.ndarray],
    ood_scores: Mapping[str, Mapping[str, np.ndarray]],
    *,
    accumulate: bool = False,
) -> list[dict[str, Any]]:
    """Tidy rows, one per (eps, OOD set, score): ``eps, ood_set, score`` and the four metrics of
    :func:`oodflow.metrics.ood_metrics` (``AUROC``, ``AUPR-In``, ``AUPR-Out``, ``FPR@95``).

    ``id_scores`` maps score -> ``(len(eps_list), N_id)``; ``ood_scores`` maps OOD set -> score ->
    ``(len(eps_list), N_ood)`` (as :func:`adversarial_scores` returns them). With ``accumulate``
    (QUIRK of the reference, whose metric objects are never reset between eps values) the row of
    ``eps_k`` is computed on the union of the ID and of the OOD scores of all ``eps_0..eps_k``.
    Rows are ordered by OOD set, score, then eps.
    """
    eps_values = [float(e) for e in eps_list]
    rows = []
    for ood_set, per_score in ood_scores.items():
        for name, ood in per_score.items():
            if name not in id_scores:
                raise ValueError(f"OOD set '{ood_set}' has score '{name}' but the ID scores do not")
            id_arr, ood_arr = np.asarray(id_scores[name]), np.asarray(ood)
            for label, arr in (("ID", id_arr), (f"OOD set '{ood_set}'", ood_arr)):
                if arr.ndim != 2 or arr.shape[0] != len(eps_values):
                    raise ValueError(
                        f"{label} scores '{name}' must be ({len(eps_values)}, N) for {len(eps_values)} "
                        f"eps values, got shape {arr.shape}"
                    )
            for k, eps in enumerate(eps_values):
                first = 0 if accumulate else k
                metrics = ood_metrics(id_arr[first : k + 1].ravel(), ood_arr[first : k + 1].ravel())
                rows.append({"eps": eps, "ood_set": ood_set, "score": name, **metrics})
    return rows
