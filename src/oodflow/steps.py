"""One function per workflow rule: file paths in, files out (atomically).

The Snakemake scripts in ``scripts/`` only read ``snakemake.input/output/params`` and call these.
Every function can also be called directly from Python, which is how the tests drive them.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from oodflow.io import load_npz, read_json, save_npz, write_json, write_text


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _benchmark(config: Mapping[str, Any]):
    from oodflow.data import BENCHMARKS

    return BENCHMARKS.get(config["benchmark"]["name"])


# --------------------------------------------------------------------------------------- data
def build_id(
    config: Mapping[str, Any],
    out: Mapping[str, str],
    prepared: str | None = None,
    raw: str | None = None,
    threads: int = 1,
) -> None:
    """Build the seeded stratified ID splits (``out`` maps split name -> npz path).

    Catalog benchmarks derive them from the ID dataset's ``prepared`` folder (and, for list-form
    data such as Food-101, its ``raw`` folder, decoded by ``threads`` threads).
    """
    from oodflow.data import derive, embedded, stored

    bench, b, seed = _benchmark(config), config["benchmark"], config["seed"]
    if bench.source is None:
        splits = embedded.build_id_splits(seed, b["train_per_class"], b["val_per_class"], b["test_per_class"])
        for split, path in out.items():
            x, y = splits[split]
            embedded.write_set(path, x, y, name=split, sources=embedded.SOURCES["id"], seed=seed)
        return
    splits = derive.id_splits(
        bench,
        prepared,
        seed,
        b["train_per_class"],
        b["val_per_class"],
        b["test_per_class"],
        raw_dir=raw,
        threads=threads,
    )
    for split, path in out.items():
        x, y, details = splits[split]
        stored.write_set(
            path,
            x,
            y,
            name=split,
            sources=[bench.source],
            seed=seed,
            details=details,
            num_classes=bench.num_classes,
        )


def build_ood(
    config: Mapping[str, Any],
    name: str,
    out: str,
    prepared: str | None = None,
    raw: str | None = None,
    threads: int = 1,
) -> None:
    """Build OOD test set ``name`` (embedded builder, or derived from its catalog source)."""
    from oodflow.data import derive, embedded, stored

    bench, seed, count = _benchmark(config), config["seed"], config["benchmark"]["ood_size"]
    if bench.source is None:
        x, y = embedded.build_ood_set(name, seed, count)
        embedded.write_set(out, x, y, name=name, sources=embedded.SOURCES[name], seed=seed)
        return
    x, y, details = derive.ood_set(bench, name, prepared, raw, seed, count, threads)
    stored.write_set(
        out, x, y, name=name, sources=[bench.ood_sources[name].dataset], seed=seed, details=details
    )


def build_aux(
    config: Mapping[str, Any],
    out: str,
    prepared: str | None = None,
    raw: str | None = None,
    threads: int = 1,
) -> None:
    """Build the auxiliary outlier pool (embedded sources, or the benchmark's catalog pool)."""
    from oodflow.data import derive, embedded, stored

    bench, seed, count = _benchmark(config), config["seed"], config["benchmark"]["aux_size"]
    if bench.source is None:
        x, y = embedded.build_aux_pool(seed, count)
        embedded.write_set(out, x, y, name="aux", sources=embedded.SOURCES["aux"], seed=seed)
        return
    x, y, details = derive.aux_pool(bench, prepared, raw, seed, count, threads)
    stored.write_set(out, x, y, name="aux", sources=[bench.aux_source.dataset], seed=seed, details=details)


def write_manifest(sidecars: Sequence[str], out: str) -> None:
    """Collect the per-file sidecars (counts, sources, sha256) into one manifest."""
    entries = {}
    for path in sidecars:
        entry = read_json(path)
        entries[str(Path(path).with_suffix(".npz"))] = entry
    write_json(out, {"files": entries})


def data_samples(sets: Mapping[str, str], out: str, dpi: int = 120) -> None:
    """A picture of the benchmark: the first images of every stored set (``sets``: name -> npz)."""
    from oodflow.data.stored import load_set
    from oodflow.report.figures import sample_grid

    sample_grid({name: load_set(path)[0] for name, path in sets.items()}, out=out, dpi=dpi)


# ----------------------------------------------------------------------------------- training
#: Benchmark keys that determine each stored set; nothing else triggers its rebuild.
DATA_KEYS = {
    "id": ("name", "train_per_class", "val_per_class", "test_per_class"),
    "ood": ("name", "ood_size"),
    "aux": ("name", "aux_size"),
}


def data_config(config: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The part of the config that determines the ``kind`` ("id", "ood", "aux") data files."""
    return {"seed": config["seed"], **{k: config["benchmark"][k] for k in DATA_KEYS[kind]}}


def run_config(config: Mapping[str, Any], run: str) -> dict[str, Any]:
    """The part of the config that determines a run's result (stored in its checkpoints).

    OOD test sets and their sizes are not part of it: adding an OOD set retrains nothing. The
    auxiliary pool is, for methods that train on it, and so is the run a fine-tuned run starts from.
    """
    from oodflow.methods import AUX_METHODS

    bench = {**data_config(config, "id"), "image_format": config["benchmark"]["image_format"]}
    if config["runs"][run]["method"] in AUX_METHODS:
        bench["aux_size"] = config["benchmark"]["aux_size"]
    out = {"seed": bench.pop("seed"), "benchmark": bench, "run": dict(config["runs"][run])}
    parent = config["runs"][run]["init_from"]
    if parent is not None:  # a fine-tuned run changes whenever the run it starts from changes
        out["init"] = run_config(config, parent)
    return out


def train(
    config: Mapping[str, Any],
    run: str,
    train_npz: str,
    val_npz: str,
    model_out: str,
    log_out: str,
    checkpoint_path: str,
    threads: int = 1,
    aux_npz: str | None = None,
    init_pt: str | None = None,
) -> None:
    """Train one run; resumes from ``checkpoint_path`` if a previous attempt was killed.

    ``aux_npz`` is the auxiliary outlier pool, for methods that train on outliers; ``init_pt`` the
    final checkpoint of the run this one fine-tunes (``init_from``).
    """
    import torch

    from oodflow import checkpoint, training
    from oodflow.config import check_parameters
    from oodflow.data.benchmarks import load_inputs
    from oodflow.seeding import configure_determinism, resolve_device

    check_parameters({"runs": {run: config["runs"][run]}})  # model/method kwargs, before any work
    configure_determinism(threads)
    device = resolve_device(config["device"])
    bench, fmt = _benchmark(config), config["benchmark"]["image_format"]
    splits = []
    for path in (train_npz, val_npz):
        x, y = load_inputs(path, bench, fmt)
        splits.append(training.Split(torch.from_numpy(x), torch.from_numpy(y)))
    aux = None
    if aux_npz is not None:
        x, y = load_inputs(aux_npz, bench, fmt)
        aux = training.Split(torch.from_numpy(x), torch.from_numpy(y))
    rc = run_config(config, run)
    start = time.perf_counter()
    model, rows = training.train(
        rc,
        *splits,
        num_classes=bench.num_classes,
        device=device,
        checkpoint_path=checkpoint_path,
        log=_log,
        aux_split=aux,
        init_state=checkpoint.load(init_pt)["model"] if init_pt else None,
    )
    _log(f"trained {run} on {device} in {time.perf_counter() - start:.1f} s")
    meta = {
        "num_classes": bench.num_classes,
        "in_channels": int(splits[0].x.shape[1]),
        "image_format": fmt,
        "benchmark": bench.name,
    }
    checkpoint.save(model_out, {"model": model.state_dict(), "config": rc, "meta": meta, "log": rows})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=training.LOG_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(log_out, buf.getvalue())
    Path(checkpoint_path).unlink(missing_ok=True)  # finished: nothing left to resume


# ------------------------------------------------------------------------------------ features
def extract(
    config: Mapping[str, Any], model_pt: str, data_npz: str, out: str, threads: int = 1, batch_size: int = 512
) -> None:
    """One forward pass over a stored set: cache logits, penultimate features and labels."""
    from oodflow import features
    from oodflow.data.benchmarks import load_inputs
    from oodflow.seeding import configure_determinism, resolve_device
    from oodflow.training import load_model

    configure_determinism(threads)
    device = resolve_device(config["device"])
    model, _ = load_model(model_pt, device)
    x, y = load_inputs(data_npz, _benchmark(config), config["benchmark"]["image_format"])
    logits, feats = features.extract(model, x, batch_size=batch_size, device=device)
    # The head travels with the cache, so post-hoc scores (ReAct, ViM) never need torch.
    head_w = model.head.weight.detach().cpu().numpy()
    head_b = model.head.bias.detach().cpu().numpy()
    save_npz(out, logits=logits, features=feats, labels=y, head_weight=head_w, head_bias=head_b)
    _log(f"extracted {len(y)} samples: logits {logits.shape}, features {feats.shape}")


# ------------------------------------------------------------------------------------- scoring
def score(
    config: Mapping[str, Any],
    name: str,
    model_pt: str | None,
    train_cache: str,
    caches: Mapping[str, str],
    data: Mapping[str, str],
    out: str,
    threads: int = 1,
) -> None:
    """Compute score ``name`` for every evaluated set (``caches``: set -> feature npz).

    Post-hoc scores read only the feature caches; network scores (ODIN) re-run the model on the
    stored inputs (``data``: set -> data npz).
    """
    from oodflow.scores import Cache, build_score

    scorer = build_score(name, **config["scores"][name])
    result: dict[str, np.ndarray] = {}
    start = time.perf_counter()
    if scorer.needs_network:
        import torch

        from oodflow.data.benchmarks import load_inputs
        from oodflow.seeding import configure_determinism, resolve_device
        from oodflow.training import load_model

        configure_determinism(threads)
        device = resolve_device(config["device"])
        model, _ = load_model(model_pt, device)
        bench, fmt = _benchmark(config), config["benchmark"]["image_format"]
        for key, path in data.items():
            x, _ = load_inputs(path, bench, fmt)
            parts = [
                scorer.score_inputs(model, torch.from_numpy(x[i : i + 256]).to(device))
                for i in range(0, len(x), 256)
            ]
            result[key] = torch.cat(parts).detach().cpu().numpy().astype(np.float64)
    else:
        from oodflow.scores import Head

        scorer.fit(Cache.from_npz(train_cache), Head.from_npz(train_cache))
        for key, path in caches.items():
            result[key] = np.asarray(scorer.score(Cache.from_npz(path)), dtype=np.float64)
    for key, values in result.items():
        if not np.all(np.isfinite(values)):
            raise FloatingPointError(f"score '{name}' produced non-finite values on '{key}'")
    save_npz(out, **result)
    _log(f"score {name}: {len(result)} sets in {time.perf_counter() - start:.2f} s")


# ---------------------------------------------------------------------------------- evaluation
def evaluate(
    config: Mapping[str, Any],
    score_files: Mapping[tuple[str, str], str],
    test_caches: Mapping[str, str],
    csv_out: str,
    json_out: str,
    draws_out: str,
) -> None:
    """Long-form metrics of every (run, score, OOD set) and ID accuracy per run.

    ``score_files`` maps (run, score) -> score npz; ``test_caches`` maps run -> ID test features.
    With ``evaluation.ood_per_id`` set, each OOD set is scored on ``draws`` seeded subsets of
    ``ood_per_id * len(ID test)`` samples (the energy/OE protocol); the subsets' indices are saved
    to ``draws_out`` (one ``(draws, size)`` array per OOD set; no arrays when the protocol is off).
    """
    from oodflow.metrics import draw_ood_subsets
    from oodflow.report.tables import long_form_metrics, summary_json
    from oodflow.seeding import derive_seed

    ev = config["evaluation"]
    subsets: dict[str, np.ndarray] = {}
    if ev["ood_per_id"] is not None:
        first = load_npz(next(iter(score_files.values())))
        size = max(1, int(len(first["id"]) * ev["ood_per_id"]))
        for ood in config["benchmark"]["ood_sets"]:
            rng = np.random.default_rng(derive_seed(config["seed"], "ood-draws", ood))
            subsets[ood] = draw_ood_subsets(len(first[ood]), min(size, len(first[ood])), ev["draws"], rng)
    save_npz(draws_out, **subsets)
    frame = long_form_metrics(config, score_files, test_caches, subsets)
    write_text(csv_out, frame.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    write_json(json_out, summary_json(frame))


def tables(metrics_csv: str, md_out: str, tex_out: str) -> None:
    from oodflow.report.tables import paper_tables

    md, tex = paper_tables(metrics_csv)
    write_text(md_out, md)
    write_text(tex_out, tex)


def _comparison(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    for spec in config["report"]["comparisons"]:
        if spec["name"] == name:
            return spec
    names = ", ".join(c["name"] for c in config["report"]["comparisons"]) or "none"
    raise KeyError(f"no comparison '{name}' in report.comparisons (has: {names})")


def comparison_table(
    config: Mapping[str, Any],
    name: str,
    metrics_csv: str,
    md_out: str,
    tex_out: str,
    csv_out: str,
    reference: str | None = None,
) -> None:
    """The two-run comparison ``name`` of ``report.comparisons`` as Markdown, LaTeX and CSV (percent).

    ``reference`` is the comparison's file of reported numbers (shown beside ours), if any.
    """
    import pandas as pd

    from oodflow.report.comparison import comparison_frame, render
    from oodflow.report.references import load_reference

    bench, spec = _benchmark(config), _comparison(config, name)
    ref = load_reference(reference, bench.ood_sets) if reference else None
    groups = {o: (bench.ood_sources[o].group if o in bench.ood_sources else "") for o in bench.ood_sets}
    groups = {o: groups[o] for o in config["benchmark"]["ood_sets"]}  # the config's order
    table = comparison_frame(pd.read_csv(metrics_csv), spec, groups, ref)
    md, tex = render(table, spec, bench.name, ref)
    write_text(md_out, md)
    write_text(tex_out, tex)
    write_text(csv_out, table.to_csv(index=False, float_format="%.4f", lineterminator="\n"))


def comparison_figure(
    config: Mapping[str, Any], name: str, score: str, baseline_npz: str, candidate_npz: str, out: str
) -> None:
    """Score histograms of the compared runs per OOD set (their ``score`` npz files)."""
    from oodflow.report import figures as fig

    spec = _comparison(config, name)
    runs = {spec["baseline"]: load_npz(baseline_npz), spec["candidate"]: load_npz(candidate_npz)}
    fig.comparison_histograms(
        runs,
        config["benchmark"]["ood_sets"],
        title=f"{config['benchmark']['name']}: {score} score, {spec['baseline']} vs {spec['candidate']}",
        out=out,
        **config["plots"],
    )


def figures(
    config: Mapping[str, Any],
    run: str,
    score_files: Mapping[str, str],
    hist_out: Mapping[str, str],
    roc_out: Mapping[str, str],
    roc_csv_out: Mapping[str, str],
) -> None:
    """Score histograms (ID vs each OOD set) and ROC curves per score, as PNG and CSV."""
    from oodflow.report import figures as fig

    for name, path in score_files.items():
        scores = load_npz(path)
        ood = {k: scores[k] for k in config["benchmark"]["ood_sets"]}
        fig.histograms(scores["id"], ood, title=f"{run}: {name}", out=hist_out[name], **config["plots"])
        fig.roc_curves(
            scores["id"], ood, title=f"{run}: {name}", out=roc_out[name], dpi=config["plots"]["dpi"]
        )
        fig.roc_csv(scores["id"], ood, out=roc_csv_out[name])


# ------------------------------------------------------------------------ paper-scale datasets
def download(dataset: str, filename: str, out: str) -> None:
    """Fetch one resource of a catalog dataset (verified, atomic; mirrors and retries).

    Environment: ``OODFLOW_MIRRORS`` (space-separated base URLs, e.g. an institute's mirror or a
    ``file://`` folder) are tried first as ``<base>/<dataset>/<filename>``, and with
    ``OODFLOW_MIRRORS_ONLY=1`` exclusively (air-gapped clusters); ``OODFLOW_CHECKSUMS`` points the
    pinned-sha256 manifest elsewhere than ``config/checksums.json``.
    """
    import dataclasses
    import os

    from oodflow.data.catalog import DATASETS, resource
    from oodflow.download import DEFAULT_MANIFEST, PinnedChecksums, fetch

    spec = DATASETS.get(dataset)
    res = resource(spec, filename)
    mirrors = [
        f"{base.rstrip('/')}/{dataset}/{filename}" for base in os.environ.get("OODFLOW_MIRRORS", "").split()
    ]
    upstream = () if os.environ.get("OODFLOW_MIRRORS_ONLY") == "1" else res.urls
    res = dataclasses.replace(res, urls=(*mirrors, *upstream))
    pins = PinnedChecksums(os.environ.get("OODFLOW_CHECKSUMS", DEFAULT_MANIFEST))
    path = fetch(res, Path(out).parent, dataset=dataset, pins=pins)
    if path != Path(out):
        raise RuntimeError(f"fetch wrote {path}, expected {out}")


def prepare(dataset: str, downloads: Sequence[str], unpacked_dir: str, raw_dir: str, out_dir: str) -> None:
    """Unpack a dataset's archives safely, lay them out in ``raw_dir`` and parse the prepared form.

    Each archive is unpacked into ``unpacked_dir/<archive name>/``; ``raw_dir`` then holds a
    symbolic link to every top-level entry of every archive and to every plain downloaded file,
    which is the upstream layout the parsers expect (e.g. ``raw/cifar-10-batches-py/``).
    """
    from oodflow.archives import extract, is_archive
    from oodflow.data.catalog import DATASETS, parser

    spec = DATASETS.get(dataset)
    raw = Path(raw_dir)
    raw.mkdir(parents=True, exist_ok=True)
    entries: list[Path] = []
    for path in map(Path, downloads):
        if spec.extract and is_archive(path):
            unpacked = extract(path, Path(unpacked_dir) / path.name)
            entries += sorted(unpacked.iterdir())
        else:
            entries.append(path)
    for entry in entries:
        if entry.name.startswith("."):
            continue  # completion markers of the unpacker
        link = raw / entry.name
        if link.is_symlink() or link.exists():
            raise FileExistsError(f"{dataset}: two resources both provide '{entry.name}'")
        link.symlink_to(entry.resolve())
    summary = parser(spec)(raw, Path(out_dir))
    _log(f"prepared {dataset}: {summary.get('splits')}")
