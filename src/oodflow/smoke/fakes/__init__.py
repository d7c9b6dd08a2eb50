"""Format-exact fakes of every catalog dataset, for smoke runs of the paper configs.

:func:`write_downloads` writes the catalog resources of a dataset as upstream ships them (the archive
type and compression, the top-level folder and inner layout, the file formats: Python 2 pickles,
MATLAB v5, gzipped idx, JPEG, JSON, text, ``.npy``/``.npz``), small (the sizes in
:mod:`oodflow.smoke.fakes.sizes`) and byte-reproducible for a given seed. They go through the real
download path (a ``file://`` mirror, checksum, safe unpacking) and the real parsers.
:func:`write_user_files` writes what a user supplies by hand (NUS-WIDE's images).

Modules: :mod:`.formats` (file-format encoders), :mod:`.archives` (deterministic tar/zip),
:mod:`.arrays` (array-form sets), :mod:`.lists` (list-form sets), :mod:`.sizes` (the counts).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from oodflow.data.catalog import DATASETS, gan_sigma
from oodflow.io import write_bytes
from oodflow.smoke.fakes import arrays, lists

#: Catalog name -> builder (seed -> {resource filename: bytes}) of every fixed catalog entry.
BUILDERS: dict[str, Callable[[int], dict[str, bytes]]] = {**arrays.BUILDERS, **lists.BUILDERS}


def names() -> list[str]:
    """The datasets :func:`write_downloads` fakes: every fixed catalog entry (plus, not listed, every
    published-GAN name ``cifar100_gan_<sigma>``)."""
    return list(DATASETS.names())


def _builder(dataset: str) -> Callable[[int], dict[str, bytes]]:
    sigma = gan_sigma(dataset)
    if sigma is not None:
        return lambda seed: arrays.fake_gan(sigma, seed)
    if dataset not in BUILDERS:
        raise KeyError(
            f"no fake for dataset '{dataset}'; valid names: {', '.join(names())} "
            "and the published GANs cifar100_gan_<sigma> (e.g. cifar100_gan_2, cifar100_gan_2_5)"
        )
    return BUILDERS[dataset]


def build(dataset: str, *, seed: int = 0) -> dict[str, bytes]:
    """The fake resource files of ``dataset`` in memory, ``{resource filename: bytes}``."""
    files = _builder(dataset)(seed)
    want = [r.filename for r in DATASETS.get(dataset).resources]
    if sorted(files) != sorted(want):
        raise RuntimeError(f"the fake of '{dataset}' makes {sorted(files)}, the catalog lists {sorted(want)}")
    return files


def write_downloads(dataset: str, dest: Path, *, seed: int = 0) -> list[Path]:
    """Write every Resource of catalog dataset ``dataset`` as ``dest/<resource.filename>`` (atomically),
    format-exact and small; returns the paths in the order of the spec's resources.

    Raises:
        KeyError: for a name that is neither a catalog entry nor a published-GAN name (listing them).
    """
    files = build(dataset, seed=seed)
    dest = Path(dest)
    paths = []
    for res in DATASETS.get(dataset).resources:
        path = dest / res.filename
        write_bytes(path, files[res.filename])
        paths.append(path)
    return paths


def write_user_files(dataset: str, dataset_root: Path, *, seed: int = 0) -> list[Path]:
    """Write the user-supplied part of ``dataset`` where the workflow reads it,
    ``<dataset_root>/user/`` (``dataset_root`` = ``resources/datasets/<name>``): NUS-WIDE's
    ``Flickr/`` images (consistent with the image lists of :func:`write_downloads` for the same
    ``seed``). A no-op for every other dataset. Returns the top-level folders written."""
    from oodflow.data.catalog import USER_FOLDER

    _builder(dataset)  # a clear error for an unknown name
    tree_of = lists.USER_TREES.get(dataset)
    if tree_of is None:
        return []
    root, tree = Path(dataset_root) / USER_FOLDER, tree_of(seed)
    for rel, data in sorted(tree.items()):
        write_bytes(root / rel, data)
    return sorted({root / rel.split("/")[0] for rel in tree})
