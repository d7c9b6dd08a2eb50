"""One function per multi-label rule (``rules/multilabel.smk``): file paths in, files out (atomic).

The config passed around is the whole validated workflow config; the multi-label part is
``config["multilabel"]``. Stored sets are npz files with ``x`` uint8 (``(N, H, W)`` grey or
``(N, H, W, 3)`` RGB) and ``y`` uint8 multi-hot ``(N, C)`` (all zero for OOD and OE images).
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

from oodflow.io import FormatError, load_npz, npz_members, save_npz, sha256_file, write_json, write_text
from oodflow.multilabel.stream import load_stored, model_input

__all__ = ["load_stored", "model_input"]  # re-exported: the stored sets' loaders


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ml_benchmark(config: Mapping[str, Any]):
    """The section's multi-label benchmark, its images at most ``benchmark.image_size`` px (null: the
    benchmark's own side; a smaller benchmark is never enlarged)."""
    import dataclasses

    from oodflow.multilabel import ML_BENCHMARKS

    b = config["multilabel"]["benchmark"]
    bench = ML_BENCHMARKS.get(b["name"])
    side = b.get("image_size")
    if side is not None and side < bench.image_size:
        bench = dataclasses.replace(bench, image_size=side)
    return bench


def oe_set(config: Mapping[str, Any]) -> str:
    """The OE pool the OE objectives train on."""
    return config["multilabel"]["benchmark"]["oe_set"] or ml_benchmark(config).oe_default


def uses_oe(config: Mapping[str, Any], run: str) -> bool:
    from oodflow.multilabel import ML_OE_OBJECTIVES

    return config["multilabel"]["runs"][run]["objective"] in ML_OE_OBJECTIVES


def oe_sets(config: Mapping[str, Any]) -> list[str]:
    """The OE pools a config stores: the training pool (if a run uses it) and the OE-selection
    candidates that are OE pools (candidates that are OOD sets are read from ``data/ood``)."""
    ml, bench = config["multilabel"], ml_benchmark(config)
    names = [oe_set(config)] if any(uses_oe(config, r) for r in ml["runs"]) else []
    sel = ml.get("oe_selection")
    if sel is not None:
        names += [c for c in sel["candidates"] if c in bench.oe_sets]
    return list(dict.fromkeys(names))


def data_params(config: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """What determines the stored sets of ``kind`` ("id", "ood", "oe")."""
    b = config["multilabel"]["benchmark"]
    keys = {
        "id": ("name", "train_size", "val_size", "test_size", "zipf", "min_tiles", "max_tiles"),
        "ood": ("name", "ood_size", "min_tiles", "max_tiles"),
        "oe": ("name", "oe_size", "min_tiles", "max_tiles"),
    }[kind]
    from oodflow.multilabel import ML_BENCHMARKS

    out = {"seed": config["seed"], **{k: b[k] for k in keys}}
    side = ml_benchmark(config).image_size
    if side != ML_BENCHMARKS.get(b["name"]).image_size:
        out["image_size"] = side  # only when reduced: the sets at the benchmark's side keep their params
    return out


def run_config(config: Mapping[str, Any], run: str) -> dict[str, Any]:
    """What determines a trained run (stored in its checkpoints): seed, ID data, OE pool, run."""
    spec = config["multilabel"]["runs"][run]
    data = data_params(config, "id")
    if uses_oe(config, run):
        data["oe"] = {"set": oe_set(config), **data_params(config, "oe")}
    return {"seed": data.pop("seed"), "benchmark": data, "run": dict(spec)}


def catalog_datasets(config: Mapping[str, Any]) -> list[str]:
    """The catalog datasets the multi-label section needs (none when absent or embedded)."""
    ml = config.get("multilabel")
    if ml is None:
        return []
    candidates = (ml.get("oe_selection") or {}).get("candidates", [])
    bench = ml_benchmark(config)
    return bench.datasets(
        [*ml["benchmark"]["ood_sets"], *[c for c in candidates if c in bench.ood_sets]],
        oe_sets(config),
    )


# ------------------------------------------------------------------------------------------ data
def _write(path: str, x, y: np.ndarray, meta: dict[str, Any]) -> dict[str, Any]:
    """Save a set (``x`` an array or :class:`oodflow.data.derive.Images`, written chunk by chunk)
    and its sidecar."""
    from oodflow.data.derive import Images

    save_npz(path, x=x.streamed() if isinstance(x, Images) else x, y=y)
    entry = {**meta, "count": int(len(x)), "shape": list(x.shape[1:]), "sha256": sha256_file(path)}
    write_json(Path(path).with_suffix(".json"), entry)
    return entry


def build_id(
    config: Mapping[str, Any],
    out: Mapping[str, str],
    folders: Mapping[str, str] | None = None,
    threads: int = 1,
) -> None:
    """train / val / test of the ID benchmark (``out``: split -> npz; each gets a JSON sidecar with
    its label histogram). ``folders``: ``prepared`` (and ``raw``) of a catalog benchmark."""
    from oodflow.multilabel import embedded
    from oodflow.multilabel.embedded import label_histogram

    bench, b, seed = ml_benchmark(config), config["multilabel"]["benchmark"], config["seed"]
    if bench.source is None:
        sizes = {"train": b["train_size"], "val": b["val_size"], "test": b["test_size"]}
        sets = embedded.build_id_canvases(seed, sizes, b["zipf"], b["min_tiles"], b["max_tiles"])
        for split, path in out.items():
            x, y = sets[split]
            meta = {"name": split, "sources": embedded.sources(split), "seed": seed, "zipf": b["zipf"]}
            _write(path, x, y, {**meta, "labels": label_histogram(y)})
        return
    from oodflow.multilabel import catalog

    sets = catalog.id_splits(bench, folders["prepared"], folders.get("raw"), seed, b, threads)
    for split, path in out.items():
        x, y, details = sets[split]
        _write(
            path,
            x,
            y,
            {"name": split, "sources": [bench.source], "seed": seed, **details, "labels": label_histogram(y)},
        )


def build_outliers(
    config: Mapping[str, Any],
    kind: str,
    name: str,
    out: str,
    folders: Mapping[str, str] | None = None,
    threads: int = 1,
) -> None:
    """An OOD test set (``kind`` "ood") or OE pool ("oe") ``name``: canvases (embedded) or a seeded
    subset of its catalog split at the benchmark's size; targets all zero."""
    from oodflow.multilabel import embedded

    bench, b, seed = ml_benchmark(config), config["multilabel"]["benchmark"], config["seed"]
    count = b["ood_size"] if kind == "ood" else b["oe_size"]
    if bench.source is None:
        x, y = embedded.build_outlier_canvases(name, seed, count, b["min_tiles"], b["max_tiles"])
        _write(out, x, y, {"name": name, "sources": embedded.sources(name), "seed": seed})
        return
    from oodflow.multilabel import catalog

    source = (bench.ood_sources if kind == "ood" else bench.oe_sources)[name]
    x, details = catalog.outliers(
        bench, source, f"{kind}/{name}", folders["prepared"], folders.get("raw"), seed, count, threads
    )
    y = np.zeros((len(x), bench.num_labels), dtype=np.uint8)
    _write(out, x, y, {"name": name, "sources": [source.dataset], "seed": seed, **details})


def write_manifest(sidecars: Sequence[str], out: str) -> None:
    from oodflow.io import read_json

    write_json(out, {"files": {str(Path(p).with_suffix(".npz")): read_json(p) for p in sidecars}})


def load_inputs(path: str, bench) -> tuple[np.ndarray, np.ndarray]:
    """The whole set as model-ready float32 (small sets only: jobs read per batch, :func:`load_stored`)."""
    images, y = load_stored(path, bench)
    return model_input(images.rows(slice(None)), bench), y


# -------------------------------------------------------------------------------------- training
def train(
    config: Mapping[str, Any],
    run: str,
    train_npz: str,
    val_npz: str,
    model_out: str,
    log_out: str,
    checkpoint_path: str,
    oe_npz: str | None = None,
    threads: int = 1,
    weights: str | None = None,
    workers: int = 0,
) -> None:
    """Train multi-label run ``run`` (resumes from ``checkpoint_path``); ``oe_npz``: the OE pool,
    ``weights``: the pretrained weights file of a ``pretrained`` model (rule download_weights).
    The stored sets are read per batch (:func:`load_stored`; ``workers`` loader processes), so the
    job's memory does not grow with them."""
    import torch

    from oodflow import checkpoint
    from oodflow.multilabel.training import LOG_FIELDS, train_ml
    from oodflow.seeding import configure_determinism, resolve_device

    configure_determinism(threads)
    device = resolve_device(config["device"])
    bench = ml_benchmark(config)
    (x_tr, y_tr), (x_val, y_val) = (load_stored(p, bench) for p in (train_npz, val_npz))
    oe = load_stored(oe_npz, bench)[0] if oe_npz else None
    rc = run_config(config, run)
    start = time.perf_counter()
    model, rows = train_ml(
        rc,
        (x_tr, torch.from_numpy(y_tr.astype(np.float32))),
        (x_val, torch.from_numpy(y_val.astype(np.float32))),
        num_labels=bench.num_labels,
        device=device,
        checkpoint_path=checkpoint_path,
        augment_policy=bench.augment,
        oe=oe,
        log=_log,
        weights=weights,
        workers=workers,
    )
    _log(f"trained {run} on {device} in {time.perf_counter() - start:.1f} s")
    meta = {"num_classes": bench.num_labels, "in_channels": int(x_tr.shape[1]), "benchmark": bench.name}
    checkpoint.save(model_out, {"model": model.state_dict(), "config": rc, "meta": meta, "log": rows})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(log_out, buf.getvalue())
    Path(checkpoint_path).unlink(missing_ok=True)


def _model(config: Mapping[str, Any], run: str, model_pt: str | None, device, weights: str | None = None):
    """A run's trained model, or (``model_pt`` None) its model at initialisation: the seeded init,
    with the pretrained weights of the file ``weights`` where its ``model_args`` ask for them (OE
    selection: EDGE's dilation distance on backbone features, ``oe.py``)."""
    import torch

    from oodflow import checkpoint
    from oodflow.models import build_model, rebuild_args
    from oodflow.seeding import derive_seed

    spec, bench = config["multilabel"]["runs"][run], ml_benchmark(config)
    torch.manual_seed(derive_seed(config["seed"], "init"))
    if model_pt is None:
        model = build_model(
            spec["model"],
            num_classes=bench.num_labels,
            in_channels=bench.channels,
            weights=weights,
            **spec["model_args"],
        )
    else:  # the checkpoint replaces every weight: no weights file needed
        model = build_model(
            spec["model"],
            num_classes=bench.num_labels,
            in_channels=bench.channels,
            **rebuild_args(spec["model_args"]),
        )
    if model_pt is not None:
        model.load_state_dict(checkpoint.load(model_pt)["model"])
    return model.to(device).eval()


def extract(
    config: Mapping[str, Any],
    run: str,
    model_pt: str | None,
    data: Mapping[str, str],
    outs: Mapping[str, str],
    threads: int = 1,
    weights: str | None = None,
) -> None:
    """Extract once, score many: logits, features and targets of every set (``data``: key -> npz,
    ``outs``: key -> cache npz), the model loaded once. With ``benchmark.eval_transform:
    random_train`` (QUIRK of EDGE's eval.py) the training augmentation is applied at evaluation,
    drawn from a generator seeded by (seed, run, set). Without ``model_pt`` (the model at
    initialisation), ``weights`` is the pretrained weights file a ``pretrained`` model reads."""
    import torch

    from oodflow.multilabel.training import extract as forward
    from oodflow.seeding import configure_determinism, derive_seed, resolve_device
    from oodflow.training import augment

    configure_determinism(threads)
    device = resolve_device(config["device"])
    model, bench = _model(config, run, model_pt, device, weights), ml_benchmark(config)
    head_w, head_b = (p.detach().cpu().numpy() for p in (model.head.weight, model.head.bias))
    random_eval = config["multilabel"]["benchmark"]["eval_transform"] == "random_train"
    for key, path in data.items():
        start = time.perf_counter()
        x, y = load_stored(path, bench)
        transform = None
        if random_eval:
            gen = torch.Generator().manual_seed(derive_seed(config["seed"], "ml-eval", run, key))
            transform = lambda b, g=gen: augment(b, bench.augment, g)  # noqa: E731
        logits, feats = forward(model, x, device, transform=transform)
        save_npz(outs[key], logits=logits, features=feats, targets=y, head_weight=head_w, head_bias=head_b)
        _log(f"{path}: {len(y)} images, features {feats.shape} in {time.perf_counter() - start:.2f} s")


def oe_features(
    config: Mapping[str, Any],
    model_pt: str | None,
    data: Mapping[str, str],
    outs: Mapping[str, str],
    threads: int = 1,
    weights: str | None = None,
    batch_size: int = 256,
) -> None:
    """The OE-selection caches (rule ml_oe_features): ``features`` = the backbone output
    (:meth:`~oodflow.models.base.OODNet.backbone_features`, before any classifier neck: 2048-d for
    ``resnet50``, as EDGE's ``oe.py``) of every set (``data``: key -> npz, ``outs``: key -> cache npz)
    of run ``oe_selection.run``, trained (``model_pt``) or at initialisation, in eval mode; with
    ``eval_transform: random_train`` each batch first gets the training augmentation, as in
    :func:`extract`."""
    import torch

    from oodflow.seeding import configure_determinism, derive_seed, resolve_device
    from oodflow.training import augment

    configure_determinism(threads)
    device = resolve_device(config["device"])
    run = config["multilabel"]["oe_selection"]["run"]
    model, bench = _model(config, run, model_pt, device, weights), ml_benchmark(config)
    random_eval = config["multilabel"]["benchmark"]["eval_transform"] == "random_train"
    for key, path in data.items():
        start = time.perf_counter()
        x, _ = load_inputs(path, bench)
        gen = torch.Generator().manual_seed(derive_seed(config["seed"], "ml-eval", run, key))
        feats = []
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size]))
                if random_eval:
                    batch = augment(batch, bench.augment, gen)
                feats.append(model.backbone_features(batch.to(device)).float().cpu())
        out = torch.cat(feats).numpy() if feats else np.zeros((0, 0), np.float32)
        save_npz(outs[key], features=out)
        _log(f"{path}: {len(x)} images, backbone features {out.shape} in {time.perf_counter() - start:.2f} s")


# --------------------------------------------------------------------------------------- scoring
def _cache(path: str):
    from oodflow.multilabel.scores import cache_of

    arrays = load_npz(path, required={"logits": 2, "features": 2, "targets": 2})
    return cache_of(arrays["logits"], arrays["features"])


def scores(
    config: Mapping[str, Any], train_cache: str, caches: Mapping[str, str], outs: Mapping[str, str]
) -> None:
    """Every configured score of one run (``outs``: score -> npz with one array per evaluated set:
    ``id`` and each OOD set name), each cache read once."""
    from oodflow.multilabel.scores import build_ml_score
    from oodflow.steps import save_scores

    train = _cache(train_cache)
    evaluated = {key: _cache(path) for key, path in caches.items()}
    for name, out in outs.items():
        scorer = build_ml_score(name, **config["multilabel"]["scores"][name]).fit(train)
        result = {key: np.asarray(scorer.score(c), dtype=np.float64) for key, c in evaluated.items()}
        save_scores(name, result, out)


# ------------------------------------------------------------------------------------ evaluation
def evaluate(
    config: Mapping[str, Any],
    score_files: Mapping[tuple[str, str], str],
    test_caches: Mapping[str, str],
    train_npz: str,
    csv_out: str,
    tail_out: str,
    json_out: str,
) -> None:
    """metrics.csv (the spine's long format; one ``mAP`` row per run with ``ood_set`` "id"), the
    tail-ID metrics (``tail.j``) and a JSON summary."""
    from oodflow.multilabel.report import metrics_frame, summary, tail_frame

    members = npz_members(train_npz)  # the targets only, not the images
    if "y" not in members:
        raise FormatError(f"{train_npz}: missing array 'y' (has: {', '.join(sorted(members))})")
    train_y = members["y"].block(0, len(members["y"]))
    frame = metrics_frame(config, score_files, test_caches)
    tail = tail_frame(config, score_files, test_caches, train_y)
    write_text(csv_out, frame.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    write_text(tail_out, tail.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    write_json(json_out, summary(frame, tail))


def report(
    config: Mapping[str, Any],
    metrics_csv: str,
    tail_csv: str,
    md_out: str,
    tex_out: str,
    tail_md_out: str,
    tail_png_out: str,
) -> None:
    """The multi-label table (Markdown, LaTeX), the tail-ID table and the tail-ID figure."""
    import pandas as pd

    from oodflow.multilabel.report import main_tables, tail_figure, tail_table

    md, tex = main_tables(pd.read_csv(metrics_csv))
    write_text(md_out, md)
    write_text(tex_out, tex)
    tail = pd.read_csv(tail_csv)
    write_text(tail_md_out, tail_table(tail))
    tail_figure(tail, out=tail_png_out, dpi=config["plots"]["dpi"] if "plots" in config else 120)


def oe_selection(
    config: Mapping[str, Any], id_cache: str, candidates: Mapping[str, str], csv_out: str, md_out: str
) -> None:
    """The ranked OE-set table of ``oe_selection`` (:mod:`oodflow.multilabel.oe_selection`)."""
    import pandas as pd

    from oodflow.multilabel.oe_selection import ranking

    sel = config["multilabel"]["oe_selection"]
    feats = {name: load_npz(path, required={"features": 2})["features"] for name, path in candidates.items()}
    id_feats = load_npz(id_cache, required={"features": 2})["features"]
    rows = ranking(
        id_feats, feats, sel["k"], sel["batch_size"], sel["quirk_sqrt_k"], sel["prefer"], seed=config["seed"]
    )
    frame = pd.DataFrame(rows, columns=["rank", "oe_set", "distance", "n"])
    write_text(csv_out, frame.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    formula = (
        "sqrt(k)·||mean S_in − mean S_out||₂ (all singular values; reference quirk)"
        if sel["quirk_sqrt_k"]
        else "||mean S_in[:k] − mean S_out[:k]||₂ (paper)"
    )
    lines = [
        f"**OE-set selection ({config['multilabel']['benchmark']['name']}): dilation distance {formula}, "
        f"k = {sel['k']}, batches of {sel['batch_size']}, backbone of run {sel['run']} "
        f"({'trained' if sel['trained'] else 'at initialisation'}); ranked "
        f"{sel['prefer']} first (the paper's direction is UNVERIFIED, docs/multilabel.md).**",
        "",
        "| Rank | OE set | Distance | Images |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['rank']} | {r['oe_set']} | {r['distance']:.4f} | {r['n']} |" for r in rows]
    write_text(md_out, "\n".join(lines) + "\n")
