"""The stored data of one OSR benchmark: known train/test images and the unknown test images.

Images are uint8 RGB ``(N, S, S, 3)`` (``S = img_size``, 32 by default; grey images repeated to three
channels and everything resized bilinearly, as the reference's ``Resize`` + MNIST-to-RGB). The model
sees them as ``ToTensor()`` does: ``x / 255`` in [0, 1], **without mean/std normalisation** (the
reference normalises nothing; its generator's Sigmoid output lives in the same range).

* catalog datasets (paper scale): known train = the known classes of the prepared ``train`` split,
  known test = those of the test split (Tiny-ImageNet: ``val``), unknown = the unknown classes of the
  test split; CIFAR+N: unknown = the CIFAR-100 **test** images of the listed classes only.
* ``mnist5k`` (embedded): the spine's mnist5k images (:func:`oodflow.data.embedded.build_id_splits`,
  seeded by the config seed): ``train_per_class`` / ``test_per_class`` images per class; known classes
  and unknowns follow the MNIST split lists.

Known labels are remapped to ``0..K-1`` in the listed order; the mapping is in the JSON sidecar.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from oodflow.io import FormatError, load_npz, read_json, save_npz, write_json
from oodflow.osr.splits import Task, dataset, task

ARRAYS = ("train_x", "train_y", "test_x", "test_y", "unknown_x", "unknown_y")


def _remap(y: np.ndarray, known: tuple[int, ...]) -> np.ndarray:
    lookup = {c: j for j, c in enumerate(known)}
    return np.array([lookup[int(c)] for c in y], dtype=np.int64)


def _select(x: np.ndarray, y: np.ndarray, classes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isin(y, np.asarray(classes))
    return x[keep], y[keep]


def cap_per_class(y: np.ndarray, cap: int | None, seed: int, *where: object) -> np.ndarray:
    """Sorted indices keeping at most ``cap`` samples of every class of ``y`` (all if ``None``): a
    seeded draw per class (``derive_seed(seed, "osr-cap", *where, class)``), in the source's order."""
    from oodflow.seeding import derive_seed

    if cap is None:
        return np.arange(len(y))
    keep = [np.arange(0, dtype=np.int64)]
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        if len(members) > cap:
            rng = np.random.default_rng(derive_seed(seed, "osr-cap", *where, int(c)))
            members = rng.choice(members, size=cap, replace=False)
        keep.append(members)
    return np.sort(np.concatenate(keep))


def _rgb(x: np.ndarray, size: int) -> np.ndarray:
    from oodflow.data.derive import _to_rgb

    if len(x) == 0:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    return np.ascontiguousarray(_to_rgb(x, size), dtype=np.uint8)


def _prepared_split(prepared_dir: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    meta = read_json(Path(prepared_dir) / "prepared.json")
    if meta.get("form") != "array" or split not in meta.get("splits", {}):
        raise FormatError(f"{prepared_dir}: expected an array-form prepared dataset with a '{split}' split")
    arrays = load_npz(Path(prepared_dir) / f"{split}.npz", required={"x": None, "y": 1})
    return arrays["x"], arrays["y"]


def build(
    name: str,
    family: str,
    trial: int,
    *,
    img_size: int = 32,
    seed: int = 0,
    prepared: Mapping[str, str] | None = None,
    train_per_class: int = 350,
    test_per_class: int = 100,
    per_class: Mapping[str, int | None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays (see :data:`ARRAYS`) and the sidecar of benchmark ``(name, family, trial)``.

    ``prepared`` maps catalog dataset names to their prepared folders (catalog datasets only);
    ``seed``, ``train_per_class`` and ``test_per_class`` apply to the embedded ``mnist5k``.
    ``per_class`` (``{"train": n or None, "test": n or None}``, config ``osr.per_class``) caps a
    catalog dataset: at most ``train`` known training images per class, ``test`` per class of the
    known test and of the unknown images (:func:`cap_per_class`, seeded by ``seed``).
    """
    ds, t = dataset(name), task(name, family, trial)
    if ds.known_source is None:
        from oodflow.data.embedded import build_id_splits

        splits = build_id_splits(
            seed, train_per_class=train_per_class, val_per_class=0, test_per_class=test_per_class
        )
        (x_tr, y_tr), (x_te, y_te) = splits["train"], splits["test"]
        x_un, y_un = x_te, y_te
        sources = {"known": "mnist5k (embedded)", "unknown": "mnist5k (embedded)"}
    else:
        if prepared is None or any(s not in prepared for s in (ds.known_source, ds.unknown_source)):
            raise ValueError(
                f"OSR dataset '{name}' needs the prepared folders of {ds.known_source}, {ds.unknown_source}"
            )
        x_tr, y_tr = _prepared_split(prepared[ds.known_source], ds.train_split)
        x_te, y_te = _prepared_split(prepared[ds.known_source], ds.test_split)
        x_un, y_un = _prepared_split(prepared[ds.unknown_source], ds.test_split)
        sources = {
            "known": f"{ds.known_source}/{ds.train_split}+{ds.test_split}",
            "unknown": f"{ds.unknown_source}/{ds.test_split}",
        }
    x_tr, y_tr = _select(x_tr, y_tr, t.known)
    x_te, y_te = _select(x_te, y_te, t.known)
    x_un, y_un = _select(x_un, y_un, t.unknown)
    caps = {k: v for k, v in (per_class or {}).items() if v is not None}
    if caps and ds.known_source is not None:
        where = (name, family, trial)
        i_tr = cap_per_class(y_tr, caps.get("train"), seed, *where, "train")
        i_te = cap_per_class(y_te, caps.get("test"), seed, *where, "test")
        i_un = cap_per_class(y_un, caps.get("test"), seed, *where, "unknown")
        x_tr, y_tr, x_te, y_te = x_tr[i_tr], y_tr[i_tr], x_te[i_te], y_te[i_te]
        x_un, y_un = x_un[i_un], y_un[i_un]
    arrays = {
        "train_x": _rgb(x_tr, img_size),
        "train_y": _remap(y_tr, t.known),
        "test_x": _rgb(x_te, img_size),
        "test_y": _remap(y_te, t.known),
        "unknown_x": _rgb(x_un, img_size),
        "unknown_y": y_un.astype(np.int64),
    }
    meta = {
        **_task_meta(t),
        "img_size": img_size,
        "sources": sources,
        "counts": {k[:-2]: int(len(v)) for k, v in arrays.items() if k.endswith("_y")},
        "labels": "known classes remapped to 0..K-1 in the listed order (mapping); unknown_y: source labels",
        "inputs": "uint8 RGB (N, S, S, 3); the model sees x / 255 in [0, 1], unnormalised (ToTensor() only)",
    }
    if caps and ds.known_source is not None:
        meta["per_class"] = {"seed": seed, **caps}
    if ds.known_source is None:
        meta["embedded"] = {
            "seed": seed,
            "train_per_class": train_per_class,
            "test_per_class": test_per_class,
        }
    return arrays, meta


def _task_meta(t: Task) -> dict[str, Any]:
    return {
        "dataset": t.dataset,
        "family": t.family,
        "trial": t.trial,
        "known": list(t.known),
        "unknown": list(t.unknown),
        "mapping": t.mapping(),
        "num_known": t.num_known,
    }


def write(
    npz: str | Path, sidecar: str | Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]
) -> None:
    save_npz(npz, **arrays)
    write_json(sidecar, dict(meta))


def load(npz: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a stored OSR benchmark (checked for every key and rank)."""
    return load_npz(npz, required={k: (4 if k.endswith("_x") else 1) for k in ARRAYS})


def to_input(x_uint8: np.ndarray) -> np.ndarray:
    """uint8 ``(N, S, S, 3)`` -> float32 ``(N, 3, S, S)`` in [0, 1] (``ToTensor()``, no normalisation)."""
    return np.ascontiguousarray(x_uint8.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)
