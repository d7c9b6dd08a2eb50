"""Classifier backbones for OOD detection, chosen by name.

Importing this package does not import torch: model factories are registered as lazy
``"module:attribute"`` strings and only imported by :func:`build_model` (or ``MODELS.get``).
Every model is an :class:`oodflow.models.base.OODNet`.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oodflow.registry import Registry

if TYPE_CHECKING:
    from oodflow.models.base import OODNet

__all__ = ["MODELS", "build_model", "rebuild_args"]

MODELS = Registry(
    "model",
    {
        "small_cnn": "oodflow.models.small_cnn:small_cnn",
        "resnet18": "oodflow.models.resnet:resnet18",
        "resnet34": "oodflow.models.resnet:resnet34",
        "resnet50": "oodflow.models.torchvision_resnet:resnet50",
        "wrn40_2": "oodflow.models.wrn:wrn40_2",
        "mobilenet_v3_small": "oodflow.models.mobilenet:mobilenet_v3_small",
        "mobilenet_v3_large": "oodflow.models.mobilenet:mobilenet_v3_large",
    },
)


def _check_kwargs(name: str, factory: Any, kwargs: dict[str, Any]) -> None:
    """Raise a :class:`TypeError` naming the model if ``factory`` does not accept ``kwargs``."""
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [
        n
        for n, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(
            f"model '{name}' got unexpected keyword argument(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted)}"
        )


def build_model(
    name: str, num_classes: int, in_channels: int, *, weights: str | Path | None = None, **kwargs: Any
) -> OODNet:
    """Build the registered model ``name`` for ``num_classes`` classes and ``in_channels`` inputs.

    ``kwargs`` are the run's ``model_args``. ``weights`` is the pretrained weights file a model with
    ``pretrained: true`` reads (:mod:`oodflow.models.weights`; the workflow passes the file its
    ``download_weights`` rule fetched); it is not a model argument of the config.
    """
    factory = MODELS.get(name)
    _check_kwargs(name, factory, {"num_classes": num_classes, "in_channels": in_channels, **kwargs})
    if kwargs.get("pretrained"):
        from oodflow.models.weights import missing_weights_message, weights_for

        entry = weights_for(name, kwargs)
        if weights is None:
            raise ValueError(f"model '{name}' is pretrained: {missing_weights_message(entry)}")
        return factory(num_classes=num_classes, in_channels=in_channels, weights=weights, **kwargs)
    if weights is not None:
        raise ValueError(f"model '{name}': a weights file ({weights}) was given but pretrained is not set")
    return factory(num_classes=num_classes, in_channels=in_channels, **kwargs)


def rebuild_args(model_args: dict[str, Any]) -> dict[str, Any]:
    """``model_args`` for rebuilding a model whose trained state dict is loaded next: ``pretrained``
    off (the same architecture; the checkpoint replaces every weight, so no weights file is read)."""
    return {**model_args, "pretrained": False} if model_args.get("pretrained") else dict(model_args)
