"""Pretrained weights as catalog resources: where each file comes from, which model it serves, and
loading it safely.

Every entry of :data:`WEIGHTS` is a :class:`WeightsSpec`: one downloadable
:class:`~oodflow.data.catalog.Resource` (published URL, checksum, size), the model and
``model_args`` it serves (``resnet50`` with ``pretrained: true``), homepage and licence. The workflow
downloads it once, through the same verified path as the datasets (rule ``download_weights``,
:func:`oodflow.steps.download_weights`: mirrors, ``OODFLOW_MIRRORS_ONLY``, pinned checksums), to
``resources/weights/<name>/<filename>`` (versioned with DVC like the datasets), and every job that
builds such a model gets that file as an input; the model factory reads it with
:func:`load_pretrained` (``torch.load(weights_only=True)``). Nothing downloads at job time.

torchvision publishes no full checksum for its weight files, only the first 8 hex digits of the
sha256 in the file name (``resnet50-0676ba61.pth``; torch.hub checks that prefix): the prefix is the
resource's ``sha256_prefix``, checked on the first download, whose full sha256 is then pinned in
``config/checksums.json`` (:class:`oodflow.download.PinnedChecksums`).

Listing names and paths imports nothing heavy (no torch).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oodflow.data.catalog import Resource
from oodflow.registry import Registry

if TYPE_CHECKING:
    from torch import nn

#: Where the workflow keeps weight files, relative to its working directory.
WEIGHTS_ROOT = Path("resources") / "weights"
#: The rule that fetches a weights file (for messages).
RULE = "download_weights"


@dataclass(frozen=True)
class WeightsSpec:
    """One pretrained weights file and the model it initialises.

    Attributes:
        name: catalog name, the folder under ``resources/weights/`` and the mirror path component.
        resource: the file: upstream URL(s), checksum (or ``sha256_prefix``), size.
        model: the registered model (:data:`oodflow.models.MODELS`) it serves.
        model_args: the ``model_args`` that ask for it (every item must match).
        architecture: ``"module:function"`` building the bare upstream network whose state dict the
            file holds (no weights downloaded: called without arguments), for shapes and fakes.
        homepage, licence, notes: provenance (for the README).
    """

    name: str
    resource: Resource
    model: str
    model_args: Mapping[str, Any]
    architecture: str
    homepage: str
    licence: str
    notes: str = ""
    approx_size: str = field(default="")

    def build_architecture(self) -> nn.Module:
        """The upstream network, randomly initialised (its ``state_dict`` has the file's keys)."""
        module, _, attr = self.architecture.partition(":")
        return getattr(importlib.import_module(module), attr)()


WEIGHTS = Registry(
    "weights",
    {
        "resnet50_imagenet1k_v1": WeightsSpec(
            name="resnet50_imagenet1k_v1",
            resource=Resource(
                filename="resnet50-0676ba61.pth",
                urls=("https://download.pytorch.org/models/resnet50-0676ba61.pth",),
                sha256_prefix="0676ba61",
            ),
            model="resnet50",
            model_args={"pretrained": True},
            architecture="torchvision.models:resnet50",
            homepage="https://pytorch.org/vision/stable/models/generated/torchvision.models.resnet50.html",
            licence="BSD-3-Clause (torchvision)",
            notes=(
                "torchvision's ResNet50_Weights.IMAGENET1K_V1 (acc@1 76.13 on ImageNet-1K), the backbone "
                "of EDGE's multi-label configs; only the first 8 hex digits of its sha256 are published "
                "(in the file name): the full sha256 is pinned on the first verified download."
            ),
            approx_size="~103 MB",
        ),
    },
)


def weights_file(name: str) -> Path:
    """``resources/weights/<name>/<filename>`` of catalog entry ``name`` (relative to the workdir)."""
    return WEIGHTS_ROOT / name / WEIGHTS.get(name).resource.filename


def weights_for(model: str, model_args: Mapping[str, Any]) -> str | None:
    """The weights entry that a model built with ``model_args`` reads, or ``None`` if it reads none.

    A model reads weights when its ``model_args`` set ``pretrained``; the entry is the one whose
    ``model`` and ``model_args`` match.

    Raises:
        KeyError: ``pretrained`` is set but no entry serves the model (listing those that exist).
    """
    if not model_args.get("pretrained"):
        return None
    for name in WEIGHTS.names():
        spec = WEIGHTS.get(name)
        if spec.model == model and all(model_args.get(k) == v for k, v in spec.model_args.items()):
            return name
    served = ", ".join(f"{n} ({WEIGHTS.get(n).model})" for n in WEIGHTS.names())
    raise KeyError(
        f"model '{model}' with model_args {dict(model_args)} has no pretrained weights; catalog: {served}"
    )


def config_weights(config: Mapping[str, Any]) -> list[str]:
    """The weights entries a validated config needs: those of its runs and multi-label runs."""
    specs = [*config.get("runs", {}).values(), *((config.get("multilabel") or {}).get("runs", {}).values())]
    return sorted({n for s in specs if (n := weights_for(s["model"], s.get("model_args", {}))) is not None})


def missing_weights_message(name: str, path: str | Path | None = None) -> str:
    """What to say when the file of ``name`` is missing: the file and how to fetch it."""
    target = weights_file(name)
    where = f"{path} (" if path is not None and Path(path) != target else ""
    return (
        f"the pretrained weights '{name}' are not at {where}{target}{')' if where else ''}: fetch them with "
        f"`snakemake --cores 1 {target}` (rule {RULE}; offline: OODFLOW_MIRRORS=<base> serving "
        f"<base>/{name}/{target.name}, or `dvc pull`), then pass that file as the model's weights"
    )


def load_pretrained(module: nn.Module, path: str | Path, name: str) -> None:
    """Load the weights file ``path`` of catalog entry ``name`` into ``module`` (the upstream network).

    The file is read with ``torch.load(weights_only=True)`` (no pickled code runs) and must be a
    state dict with exactly ``module``'s keys and shapes; BatchNorm ``num_batches_tracked``
    counters, which files saved by torch < 0.4.1 lack, default to 0.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message names it and the rule that fetches it).
        ValueError: the file is not a plain state dict, or its keys or shapes differ from
            ``module``'s (naming the first offending keys).
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(missing_weights_message(name, path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        from oodflow.checkpoint import describe_load_error

        raise ValueError(
            f"{path}: not a plain state dict of tensors (refused by torch.load(weights_only=True)): "
            f"{describe_load_error(err)}"
        ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(
            f"{path}: expected a state dict mapping names to tensors, got {type(state).__name__}"
        )
    expected = module.state_dict()
    state = dict(state)
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = [
            f"missing keys {_few(missing)}" if missing else "",
            f"unexpected keys {_few(unexpected)}" if unexpected else "",
        ]
        raise ValueError(f"{path}: not the '{name}' weights: {'; '.join(p for p in parts if p)}")
    for key, want in expected.items():
        if state[key].shape != want.shape:
            raise ValueError(
                f"{path}: not the '{name}' weights: key '{key}' has shape {tuple(state[key].shape)}, "
                f"expected {tuple(want.shape)}"
            )
    module.load_state_dict(state, strict=True)


def _few(keys: list[str], n: int = 5) -> str:
    shown = ", ".join(f"'{k}'" for k in keys[:n])
    return shown + (f" (and {len(keys) - n} more)" if len(keys) > n else "")


def markdown_table() -> str:
    """The weights catalog as a Markdown table (the README's)."""
    rows = ["| weights | serves | download | checksum | licence |", "|---|---|---|---|---|"]
    for name in WEIGHTS.names():
        spec = WEIGHTS.get(name)
        res = spec.resource
        args = ", ".join(
            f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in spec.model_args.items()
        )
        check = "published" if res.md5 or res.sha256 else "prefix published, sha256 pinned on first download"
        rows.append(
            f"| `{name}` | `{spec.model}` ({args}) | [{res.filename}]({res.urls[0]}) "
            f"({spec.approx_size or '?'}) | {check} | {spec.licence} |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m oodflow.models.weights
    print(markdown_table(), end="")
