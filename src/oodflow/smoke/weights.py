"""Format-exact fakes of the pretrained weights files (:data:`oodflow.models.weights.WEIGHTS`).

A fake is what the upstream file is: a ``torch.save``\\ d state dict of the upstream network, with
exactly its keys, shapes and dtypes, under the upstream file name, so that it goes through the real
download path (mirror, checksum) and the real loader (:func:`oodflow.models.weights.load_pretrained`).
Its values are random: the upstream network's own initialisation under a fixed seed, with BatchNorm
affine parameters and running statistics perturbed (so that every tensor of the file differs from a
fresh model's), all drawn from one seeded generator: the same name and seed give the same bytes.
No weights are downloaded (the architecture is built without weights).
"""

from __future__ import annotations

from pathlib import Path

from oodflow.io import write_bytes
from oodflow.models.weights import WEIGHTS


def fake_state_dict(name: str, seed: int = 0) -> dict:
    """A random state dict with exactly the keys, shapes and dtypes of weights entry ``name``."""
    import torch

    spec = WEIGHTS.get(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = spec.build_architecture()
    gen = torch.Generator().manual_seed(seed + 1)
    state = {}
    for key, value in net.state_dict().items():
        value = value.detach().clone()
        if value.is_floating_point():
            if key.endswith("running_var"):
                value = 0.5 + torch.rand(value.shape, generator=gen)
            elif key.endswith(("running_mean", "bias")) and value.ndim == 1:
                value = 0.1 * torch.randn(value.shape, generator=gen)
            elif key.endswith("weight") and value.ndim == 1:  # BatchNorm scale
                value = 1.0 + 0.1 * torch.randn(value.shape, generator=gen)
        state[key] = value.contiguous()
    return state


def write_fake_weights(name: str, dest: Path, seed: int = 0) -> Path:
    """Write a fake of weights entry ``name`` into folder ``dest`` under the upstream file name
    (atomically) and return its path: ``dest/<filename>``, e.g. ``dest/resnet50-0676ba61.pth``."""
    import io

    import torch

    target = Path(dest) / WEIGHTS.get(name).resource.filename
    buf = io.BytesIO()  # saved to memory: the archive's record names do not depend on a temp name
    torch.save(fake_state_dict(name, seed), buf)
    write_bytes(target, buf.getvalue())
    return target
