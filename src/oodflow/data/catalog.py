"""The paper-scale dataset catalog: where each dataset comes from and how it is prepared.

Every entry is a :class:`DatasetSpec`: its downloadable :class:`Resource` files (URL first, then
mirrors, each with the published checksum, or none when nothing is published: then the sha256 is
pinned in ``config/checksums.json`` on first verified download), its homepage and licence, and a
parser that turns the downloaded (and extracted) files into one common prepared form.

Prepared form (what the workflow's loaders read), in ``<prepared dir>/``:

* ``prepared.json``: ``{"dataset", "form", "splits": {split: {"count", "shape"?}}, "classes"}``.
* **array form** (images of at most 64x64 px): ``<split>.npz`` with ``x`` uint8 ``(N, H, W, C)``
  (C = 1 or 3, channels last, as stored by the source) and ``y`` int64 ``(N,)`` (``-1`` where a
  set has no labels, e.g. OOD-only sets).
* **list form** (larger or variable-size images): ``<split>.tsv`` with the header ``path\tlabel``;
  ``path`` is relative to the raw folder, ``label`` an int (``-1`` for none) or, for multi-label
  sets, the space-separated indices of the labels present.

Listing names imports nothing heavy; the source modules are imported on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from oodflow.registry import Registry


@dataclass(frozen=True)
class Resource:
    """One downloadable file.

    Attributes:
        filename: name of the file once downloaded.
        urls: the upstream URL first, then mirrors, tried in order.
        md5 / sha256: the published checksum, if any; with neither, the sha256 pinned in
            ``config/checksums.json`` is checked (and pinned on the first verified download).
        size: expected size in bytes when known (for progress bars and early truncation errors).
        sha256_prefix: a published prefix of the sha256 where only that is published (torchvision
            embeds 8 hex digits in its weight file names); checked before the first download is
            pinned.
    """

    filename: str
    urls: tuple[str, ...]
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    sha256_prefix: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset of the papers: its files, provenance and the parser to the prepared form."""

    name: str
    resources: tuple[Resource, ...]
    homepage: str
    licence: str
    parser: str  # "module:function" with signature (raw_dir: Path, out_dir: Path) -> dict
    form: str  # "array" | "list"
    splits: tuple[str, ...]
    approx_size: str = ""  # download size, for the README
    notes: str = ""
    extract: bool = True  # unpack archives among the resources before parsing
    used_by: tuple[str, ...] = field(default=())  # paper configs that need it
    #: Top-level raw entries that are not downloadable and that the user places by hand under
    #: ``resources/datasets/<name>/user/`` (e.g. NUS-WIDE's ``Flickr``); see :data:`USER_FOLDER`.
    user_supplied: tuple[str, ...] = field(default=())


#: Where user-supplied entries of a dataset live, relative to ``resources/datasets/<name>/``: outside
#: every rule output, so that no rule ever deletes them; :func:`oodflow.steps.prepare` links them into raw/.
USER_FOLDER = "user"


#: The published GAN sample files (docs/gan_outliers.md): latent std 0.0, 0.1, ..., 10.0 (and 50.0).
GAN_PREFIX = "cifar100_gan_"
GAN_PUBLISHED_TENTHS = frozenset([*range(0, 101), 500])


def gan_dataset(sigma: float | str) -> str:
    """The catalog name of the published ``samples-<sigma>.npz``: ``2.0`` -> ``cifar100_gan_2``,
    ``2.5`` -> ``cifar100_gan_2_5``. A sigma that was not published is a ValueError."""
    tenths = round(float(sigma) * 10)
    if tenths not in GAN_PUBLISHED_TENTHS or abs(float(sigma) * 10 - tenths) > 1e-9:
        raise ValueError(
            f"no published GAN samples for sigma {sigma}; published: 0.0, 0.1, ..., 10.0 and 50.0"
        )
    whole, tenth = divmod(tenths, 10)
    return f"{GAN_PREFIX}{whole}" + (f"_{tenth}" if tenth else "")


def gan_sigma(name: str) -> str | None:
    """The sigma (file-name form, e.g. ``"2.5"``) of a published-GAN catalog name, else ``None``."""
    if not name.startswith(GAN_PREFIX):
        return None
    parts = name[len(GAN_PREFIX) :].split("_")
    if not (1 <= len(parts) <= 2 and all(p.isdigit() and p == str(int(p)) for p in parts)):
        return None
    if len(parts) == 2 and not 1 <= int(parts[1]) <= 9:
        return None
    sigma = f"{int(parts[0])}.{parts[1] if len(parts) == 2 else 0}"
    try:
        return sigma if gan_dataset(sigma) == name else None
    except ValueError:
        return None


class _Catalog(Registry):
    """The dataset registry plus one entry per published GAN sample file (``cifar100_gan_<sigma>``),
    made on first use; :meth:`names` lists only the fixed entries (the README's table)."""

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or (isinstance(name, str) and gan_sigma(name) is not None)

    def check(self, name: str) -> None:
        if name not in self:
            super().check(name)

    def get(self, name: str):
        if not super().__contains__(name) and gan_sigma(name) is not None:
            from oodflow.data.sources.small import gan_spec

            return gan_spec(name, gan_sigma(name))
        return super().get(name)

    def unknown(self, names):
        return [n for n in names if n not in self]


#: Name -> "module:SPEC" of every dataset; the modules live in ``oodflow.data.sources``.
DATASETS = _Catalog(
    "dataset",
    {
        "cifar10": "oodflow.data.sources.small:CIFAR10",
        "cifar100": "oodflow.data.sources.small:CIFAR100",
        "svhn": "oodflow.data.sources.small:SVHN",
        "svhn_extra": "oodflow.data.sources.small:SVHN_EXTRA",
        "mnist": "oodflow.data.sources.small:MNIST",
        "fashion_mnist": "oodflow.data.sources.small:FASHION_MNIST",
        "tinyimagenet": "oodflow.data.sources.small:TINYIMAGENET",
        "lsun_crop": "oodflow.data.sources.small:LSUN_CROP",
        "lsun_resize": "oodflow.data.sources.small:LSUN_RESIZE",
        "tinyimagenet_crop": "oodflow.data.sources.small:TINYIMAGENET_CROP",
        "tinyimagenet_resize": "oodflow.data.sources.small:TINYIMAGENET_RESIZE",
        "isun": "oodflow.data.sources.small:ISUN",
        "tinyimages_300k": "oodflow.data.sources.small:TINYIMAGES_300K",
        "cifar100_gan_50": "oodflow.data.sources.small:CIFAR100_GAN_50",
        "cifar100_gan_2": "oodflow.data.sources.small:CIFAR100_GAN_2",
        "food101": "oodflow.data.sources.large:FOOD101",
        "flowers102": "oodflow.data.sources.large:FLOWERS102",
        "oxford_pets": "oodflow.data.sources.large:OXFORD_PETS",
        "dtd": "oodflow.data.sources.large:DTD",
        "places365_val": "oodflow.data.sources.large:PLACES365_VAL",
        "voc2012": "oodflow.data.sources.large:VOC2012",
        "coco2014": "oodflow.data.sources.large:COCO2014",
        "nuswide": "oodflow.data.sources.large:NUSWIDE",
        "inaturalist_ood": "oodflow.data.sources.large:INATURALIST_OOD",
        "sun_ood": "oodflow.data.sources.large:SUN_OOD",
        "places_ood": "oodflow.data.sources.large:PLACES_OOD",
    },
)


def resource(spec: DatasetSpec, filename: str) -> Resource:
    """The resource of ``spec`` named ``filename`` (a clear KeyError otherwise)."""
    for res in spec.resources:
        if res.filename == filename:
            return res
    names = ", ".join(r.filename for r in spec.resources)
    raise KeyError(f"dataset '{spec.name}' has no resource '{filename}' (has: {names})")


def parser(spec: DatasetSpec):
    """The parse function of ``spec`` (imported on first use)."""
    module, _, attr = spec.parser.partition(":")
    return getattr(importlib.import_module(module), attr)


def markdown_table() -> str:
    """The catalog as a Markdown table (the README's dataset table is generated from it)."""
    rows = ["| dataset | form | splits | download | checksum | licence |", "|---|---|---|---|---|---|"]
    for name in DATASETS.names():
        spec = DATASETS.get(name)
        if all(r.md5 or r.sha256 for r in spec.resources):
            check = "published"
        elif any(r.md5 or r.sha256 for r in spec.resources):
            check = "partly published, rest pinned"
        else:
            check = "pinned on first download"
        links = ", ".join(f"[{r.filename}]({r.urls[0]})" for r in spec.resources)
        rows.append(
            f"| `{name}` | {spec.form} | {', '.join(spec.splits)} | {links} ({spec.approx_size or '?'}) "
            f"| {check} | {spec.licence} |"
        )
    return "\n".join(rows) + "\n"


PAPER_CONFIGS = Path(__file__).resolve().parents[3] / "config" / "papers"


def _benchmarks(config) -> str:
    """What a config runs on: the runs' benchmark, the multi-label benchmark, the OSR datasets."""
    parts = []
    if config["runs"]:
        parts.append(f"`{config['benchmark']['name']}`")
    if config.get("multilabel"):
        parts.append(f"`{config['multilabel']['benchmark']['name']}` (multi-label)")
    if config.get("osr"):
        parts.append(f"{', '.join(f'`{d}`' for d in config['osr']['datasets'])} (OSR)")
    return ", ".join(parts)


def paper_config_table(config_dir: str | Path = PAPER_CONFIGS) -> str:
    """Which catalog datasets each paper config needs, with their download sizes (for the README).

    The list is :func:`oodflow.steps.catalog_datasets` of the validated config, as the rules see it.
    """
    from oodflow.config import load
    from oodflow.steps import catalog_datasets

    rows = ["| paper config | benchmark | datasets it downloads |", "|---|---|---|"]
    for path in sorted(Path(config_dir).glob("*.yaml")):
        config = load(path)
        listed = ", ".join(f"`{n}` ({DATASETS.get(n).approx_size})" for n in catalog_datasets(config))
        rows.append(f"| `config/papers/{path.name}` | {_benchmarks(config)} | {listed} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m oodflow.data.catalog
    print(markdown_table())
    print(paper_config_table(), end="")
