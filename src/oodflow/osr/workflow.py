"""The OSR sub-DAG's steps (``rules/osr.smk``): one function per rule, called by thin scripts.

Importing this module imports no torch (the workflow reads :func:`run_config` while planning).
Outputs per benchmark ``results/<osr.name>/<family>/<dataset>/trial<trial>/``: ``data.npz`` +
``data.json`` (known-label mapping), and per method ``<method>/model.pt``, ``<method>/cache.npz``
(logits and embeddings of the known train, known test and unknown images), ``<method>/eval.json``
(the OSR metrics under both protocol scores, ``msp`` and ``maxlogit``, the method's own named by
``protocol``, and the post-hoc scores' metrics) and ``<method>/oscr.npz`` (the OSCR curve of the
method's own protocol score).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from oodflow.io import load_npz, read_json, save_npz, write_json
from oodflow.osr.splits import DATASETS, task


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def data_config(config: Mapping[str, Any], dataset: str, family: str, trial: int) -> dict[str, Any]:
    """What determines a benchmark's stored data (the embedded sizes and seed only for mnist5k)."""
    osr = config["osr"]
    out = {"dataset": dataset, "family": family, "trial": int(trial), "img_size": osr["train"]["img_size"]}
    if DATASETS[dataset].known_source is None:
        out.update(seed=config["seed"], **osr["embedded"])
    elif any(v is not None for v in osr["per_class"].values()):  # uncapped: as before the cap existed
        out.update(seed=config["seed"], per_class=dict(osr["per_class"]))
    return out


def run_config(
    config: Mapping[str, Any], dataset: str, family: str, trial: int, method: str
) -> dict[str, Any]:
    """What determines a trained OSR model (stored in its checkpoints)."""
    osr = config["osr"]
    bench = {
        **data_config(config, dataset, family, trial),
        "num_known": task(dataset, family, int(trial)).num_known,
    }
    bench.pop("seed", None)
    train = dict(osr["train"])
    recipe = (osr.get("recipes") or {}).get(method)
    if recipe is not None:
        from oodflow.osr import recipe_train

        train = recipe_train(recipe, train, dataset)
    return {
        "seed": config["seed"],
        "benchmark": bench,
        "method": method,
        "method_args": dict(osr["methods"][method]),
        "train": train,
    }


def eval_config(config: Mapping[str, Any]) -> dict[str, Any]:
    osr = config["osr"]
    return {"evaluation": osr["evaluation"], "scores": osr["scores"]}


def catalog_sources(config: Mapping[str, Any]) -> list[str]:
    """The catalog datasets the OSR section reads (none for mnist5k)."""
    names: list[str] = []
    for name in (config.get("osr") or {}).get("datasets", []):
        ds = DATASETS[name]
        names += [s for s in (ds.known_source, ds.unknown_source) if s is not None]
    return list(dict.fromkeys(names))


def osr_data(
    config: Mapping[str, Any], dataset: str, family: str, trial: int,
    prepared: Mapping[str, str], npz_out: str, json_out: str,
) -> None:  # fmt: skip
    from oodflow.osr import data

    cfg = data_config(config, dataset, family, trial)
    extra = {k: cfg[k] for k in ("seed", "train_per_class", "test_per_class", "per_class") if k in cfg}
    arrays, meta = data.build(
        dataset, family, int(trial), img_size=cfg["img_size"], prepared=prepared, **extra
    )
    _log(f"OSR {dataset}/{family}/trial{trial}: {meta['counts']}, known {meta['known']}")
    data.write(npz_out, json_out, arrays, meta)


def osr_train(
    config: Mapping[str, Any], dataset: str, family: str, trial: int, method: str,
    data_npz: str, model_out: str, checkpoint_path: str, threads: int = 1,
) -> None:  # fmt: skip
    """Train one method on one benchmark; the per-epoch checkpoint is removed on success."""
    from pathlib import Path

    from oodflow import checkpoint
    from oodflow.osr import data
    from oodflow.osr.train import train
    from oodflow.seeding import configure_determinism, resolve_device

    configure_determinism(threads)
    device = resolve_device(config["device"])
    run = run_config(config, dataset, family, trial, method)
    method_obj, rows = train(
        run, data.load(data_npz), device=device, checkpoint_path=checkpoint_path, log=_log
    )
    checkpoint.save(model_out, {"model": method_obj.inference_state(), "config": run, "log": rows})
    Path(checkpoint_path).unlink(missing_ok=True)


def _forward(method, x_uint8: np.ndarray, device, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from oodflow.osr.data import to_input

    logits, feats = [], []
    with torch.inference_mode():
        for i in range(0, len(x_uint8), batch_size):
            x = torch.from_numpy(to_input(x_uint8[i : i + batch_size])).to(device)
            z, g = method.infer(x)
            logits.append(z.float().cpu().numpy())
            feats.append(g.float().cpu().numpy())
    return np.concatenate(logits), np.concatenate(feats)


def osr_eval(
    config: Mapping[str, Any], model_pt: str, data_npz: str,
    cache_out: str, eval_out: str, oscr_out: str, threads: int = 1,
) -> None:  # fmt: skip
    """One forward pass (cached), the OSR metrics and the post-hoc scores' metrics."""
    from oodflow.osr import PROTOCOL_SCORES, data
    from oodflow.osr.evaluate import osr_metrics, posthoc_metrics
    from oodflow.osr.train import load_model
    from oodflow.scores import Cache
    from oodflow.seeding import configure_determinism, resolve_device

    configure_determinism(threads)
    device = resolve_device(config["device"])
    method, payload = load_model(model_pt, device)
    run, ev = payload["config"], config["osr"]["evaluation"]
    arrays = data.load(data_npz)
    caches, cache_arrays = {}, {}
    for part, labels in (("train", "train_y"), ("known", "test_y"), ("unknown", "unknown_y")):
        x = arrays["train_x" if part == "train" else "test_x" if part == "known" else "unknown_x"]
        logits, feats = _forward(method, x, device, ev["batch_size"])
        caches[part] = Cache(logits, feats, arrays[labels])
        cache_arrays.update(
            {f"{part}_logits": logits, f"{part}_features": feats, f"{part}_labels": arrays[labels]}
        )
    save_npz(cache_out, **cache_arrays)
    temp = float(run["method_args"].get("temp", 1.0))
    protocol = PROTOCOL_SCORES.get(run["method"], "msp")
    both = {
        score: osr_metrics(
            caches["known"], caches["unknown"], temp=temp, smoothing=ev["smoothing"], score=score
        )
        for score in ("msp", "maxlogit")
    }
    metrics, curve = both[protocol]  # the method's own protocol (its OSCR curve is the one stored)
    scores = {k: v for k, v in config["osr"]["scores"].items() if k not in both}
    posthoc = posthoc_metrics(caches["train"], caches["known"], caches["unknown"], scores)
    save_npz(oscr_out, fpr=curve["fpr"], ccr=curve["ccr"])
    bench = run["benchmark"]
    write_json(
        eval_out,
        {
            "dataset": bench["dataset"],
            "family": bench["family"],
            "trial": bench["trial"],
            "method": run["method"],
            "num_known": bench["num_known"],
            "counts": {k: len(c) for k, c in caches.items()},
            "msp": both["msp"][0],
            "maxlogit": both["maxlogit"][0],
            "protocol": protocol,
            "posthoc": posthoc,
            "threshold": {"smoothing": ev["smoothing"], "temp": temp},
        },
    )
    _log(
        f"{bench['dataset']}/{bench['family']}/trial{bench['trial']} {run['method']} ({protocol}): {metrics}"
    )


def osr_report(
    config: Mapping[str, Any], evals: Sequence[str], curves: Sequence[str], reference: str | None,
    out_dir: str, figure: str,
) -> None:  # fmt: skip
    """Tables (Markdown, LaTeX, CSV per metric), the long-form metrics.csv and the OSCR figure."""
    from oodflow.osr import report

    records = [read_json(p) for p in evals]
    curve_arrays = [load_npz(p, required={"fpr": 1, "ccr": 1}) for p in curves]
    ref = report.load_reference(reference) if reference else None
    report.write_tables(records, ref, out_dir, name=config["osr"]["name"])
    report.oscr_figure(records, curve_arrays, figure, dpi=config["plots"]["dpi"])
