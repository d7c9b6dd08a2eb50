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

from oodflow.io import FormatError, load_npz, read_json, save_npz, write_json, write_text


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
    check_prepared(config, bench.source, prepared)
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
    check_prepared(config, bench.ood_sources[name].dataset, prepared)
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
    if bench.aux_source is not None:
        check_prepared(config, bench.aux_source.dataset, prepared)
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


def data_config(config: Mapping[str, Any], kind: str, ood_set: str | None = None) -> dict[str, Any]:
    """The part of the config that determines the ``kind`` ("id", "ood", "aux") data files.

    With ``ood_set`` (kind "ood"), also the parser options of that set's catalog dataset; for "id"
    and "aux", those of the ID dataset and the auxiliary pool. They are added only when set, so a
    config without dataset options keeps its params (and reruns nothing).
    """
    out = {"seed": config["seed"], **{k: config["benchmark"][k] for k in DATA_KEYS[kind]}}
    bench = _benchmark(config)
    source = {
        "id": bench.source,
        "ood": bench.ood_sources[ood_set].dataset if ood_set in bench.ood_sources else None,
        "aux": bench.aux_source.dataset if bench.aux_source else None,
    }[kind]
    if source is not None and parser_args(config, source):
        out["parser_args"] = {source: parser_args(config, source)}
    return out


def uses_aux(config: Mapping[str, Any]) -> bool:
    """Whether a run trains on the auxiliary outlier pool (outlier exposure and the like, unless it
    takes GAN outliers instead) or a hyper-parameter search validates on it (``hpo``)."""
    from oodflow.methods import AUX_METHODS

    return any(
        (spec["method"] in AUX_METHODS and not uses_gan(spec)) or spec.get("hpo") is not None
        for spec in config["runs"].values()
    )


def uses_gan(spec: Mapping[str, Any]) -> bool:
    """Whether a run (its config entry) trains on GAN outliers (``outliers.source: gan``)."""
    return (spec.get("outliers") or {}).get("source") == "gan"


def _gan_pool_config(config: Mapping[str, Any]) -> dict[str, Any]:
    g = config["benchmark"]["gan"]
    if g["source"] == "published":
        return {"source": "published"}
    return {"source": "trained", "samples": g["samples"], **gan_config(config)["gan"]}


def catalog_datasets(config: Mapping[str, Any]) -> list[str]:
    """The catalog datasets a (validated) config needs: its ID data, OOD sets and, when a run
    trains on outliers, the auxiliary pool (none of these for the embedded benchmark); the
    published GAN sample files of the runs' sigmas when ``benchmark.gan.source`` is ``published``;
    and the sources of the ``osr`` section's datasets."""
    names = _benchmark(config).datasets(config["benchmark"]["ood_sets"], aux=uses_aux(config))
    if config["benchmark"]["gan"]["source"] == "published":
        from oodflow.data.catalog import gan_dataset

        names += [gan_dataset(sigma) for sigma in gan_sigmas(config)]
    if config.get("osr") is not None:  # the open-set section's sources (none for mnist5k)
        from oodflow.osr.workflow import catalog_sources

        names += catalog_sources(config)
    from oodflow.multilabel.steps import catalog_datasets as multilabel_datasets

    names += multilabel_datasets(config)  # the `multilabel` section's ID, OOD and OE datasets
    return list(dict.fromkeys(names))


def parser_args(config: Mapping[str, Any], dataset: str) -> dict[str, Any]:
    """The configured keyword arguments of a catalog dataset's parser (``datasets.<name>.parser_args``)."""
    return dict(config.get("datasets", {}).get(dataset, {}).get("parser_args", {}))


#: Written by :func:`prepare` into the prepared folder: the parser options it was prepared with.
PARSER_ARGS_RECORD = "parser_args.json"


def prepared_with(prepared_dir: str | Path) -> dict[str, Any]:
    """The parser options a prepared folder was made with (``{}`` when none are recorded)."""
    path = Path(prepared_dir) / PARSER_ARGS_RECORD
    return read_json(path) if path.is_file() else {}


def check_prepared(config: Mapping[str, Any], dataset: str, prepared_dir: str | Path) -> None:
    """Refuse a prepared folder made with other parser options than the config asks for.

    Snakemake re-prepares a dataset whose options changed (they are the prepare rule's params),
    but only if it has the metadata of the first preparation; a folder pulled from DVC into a
    fresh clone has none, so this check turns a stale dataset into an error instead.
    """
    have, want = prepared_with(prepared_dir), parser_args(config, dataset)
    if have != want:
        raise ValueError(
            f"{prepared_dir} was prepared with parser_args {have}, but the config asks for {want} "
            f"(datasets.{dataset}.parser_args); re-prepare it: snakemake --cores 1 --force "
            f"{Path(prepared_dir).as_posix()} --configfile <config>"
        )


def run_config(config: Mapping[str, Any], run: str) -> dict[str, Any]:
    """The part of the config that determines a run's result (stored in its checkpoints).

    OOD test sets and their sizes are not part of it: adding an OOD set retrains nothing. The
    auxiliary pool is, for methods that train on it and for runs with a hyper-parameter search
    (``hpo``, validated on held-out aux images), and so is the run a fine-tuned run starts from.
    A run's ``resources`` (what a cluster grants its jobs) are not part of it. The ``hpo`` block
    is part of it except ``storage``, which says where trials are kept, not what they compute (and
    may name a database server). A run with GAN outliers (``outliers.source:
    gan``) depends on ``benchmark.gan`` instead of the aux pool; runs without ``outliers`` keep
    exactly the params they had before GAN outliers existed. Methods that need the benchmark's
    normalisation get it here (:func:`with_normalisation`), so it is recorded with the run.
    """
    from oodflow.methods import AUX_METHODS

    spec = {k: v for k, v in config["runs"][run].items() if k not in ("resources", "scores")}
    spec = with_normalisation(config, spec)  # where a run trains and how it is scored: not what it is
    bench = {**data_config(config, "id"), "image_format": config["benchmark"]["image_format"]}
    if uses_gan(spec):  # GAN outliers replace the aux pool: the GAN's config determines them
        bench["gan"] = _gan_pool_config(config)
    elif spec["method"] in AUX_METHODS or spec.get("hpo") is not None:
        bench["aux_size"] = config["benchmark"]["aux_size"]
    if spec.get("hpo") is not None:
        spec["hpo"] = {k: v for k, v in spec["hpo"].items() if k != "storage"}
    out = {"seed": bench.pop("seed"), "benchmark": bench, "run": spec}
    if spec.get("seed") is not None:  # a run of `seeds`: it trains with its own seed, on the config's data
        out["seed"], bench["seed"] = spec["seed"], out["seed"]
    parent = config["runs"][run]["init_from"]
    if parent is not None:  # a fine-tuned run changes whenever the run it starts from changes
        out["init"] = run_config(config, parent)
    return out


#: Methods that take the benchmark's per-channel ``mean``/``std`` (pixel-unit eps, clipping; DIAS:
#: its generator's [0, 1] samples as model inputs); the workflow fills them in when a run gives neither.
NORMALISED_METHODS = frozenset({"aoe", "palm", "adapt", "dias"})


def with_normalisation(config: Mapping[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``spec`` with the benchmark's ``mean``/``std`` in ``method_args`` for a method of
    :data:`NORMALISED_METHODS` whose ``method_args`` have neither key (a copy; other runs unchanged).

    ``mean: null, std: null`` in the config opts out (eps in model-input units, no clipping). With
    ``image_format`` rgb32 a grey benchmark's single value is repeated per channel, as the inputs are.
    """
    args = spec.get("method_args", {})
    if spec["method"] not in NORMALISED_METHODS or "mean" in args or "std" in args:
        return spec
    mean, std = normalisation(config)
    return {**spec, "method_args": {**args, "mean": mean, "std": std}}


def normalisation(config: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """The benchmark's per-channel ``mean``/``std`` of the model input, one value per channel of the
    configured ``image_format`` (a grey benchmark served as RGB repeats its single value)."""
    bench = _benchmark(config)
    mean, std = list(bench.mean), list(bench.std)
    if len(mean) == 1 and config["benchmark"]["image_format"].startswith("rgb"):
        mean, std = mean * 3, std * 3
    return mean, std


def _load_split(path: str, bench, fmt: str):
    import torch

    from oodflow.data.benchmarks import load_inputs
    from oodflow.training import Split

    x, y = load_inputs(path, bench, fmt)
    return Split(torch.from_numpy(x), torch.from_numpy(y))


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
    best_json: str | None = None,
    holdout_npz: str | None = None,
    weights: str | None = None,
) -> None:
    """Train one run; resumes from ``checkpoint_path`` if a previous attempt was killed.

    ``aux_npz`` is the auxiliary outlier pool, for methods that train on outliers; ``init_pt`` the
    final checkpoint of the run this one fine-tunes (``init_from``). A run with an ``hpo`` block
    needs its search's ``best_json`` (whose parameters are merged into the run before training, so
    the checkpoint's config records them) and ``holdout_npz`` (aux images it must not train on).
    ``weights`` is the pretrained weights file of a run with ``model_args.pretrained`` (rule
    download_weights).
    """
    from oodflow import checkpoint, training
    from oodflow.config import check_parameters
    from oodflow.gan import format_sigma
    from oodflow.seeding import configure_determinism, resolve_device

    config = _with_best_params(config, run, best_json)
    check_parameters({"runs": {run: config["runs"][run]}})  # model/method kwargs, before any work
    configure_determinism(threads)
    device = resolve_device(config["device"])
    bench, fmt = _benchmark(config), config["benchmark"]["image_format"]
    splits = [_load_split(path, bench, fmt) for path in (train_npz, val_npz)]
    aux = None
    if aux_npz is not None:
        aux = _load_split(aux_npz, bench, fmt)
        if config["runs"][run].get("hpo") is not None:
            aux = _subset(aux, _aux_training_indices(aux_npz, len(aux), holdout_npz))
        if uses_gan(config["runs"][run]):  # aux_npz is the GAN pool (rule gan_pool)
            out = config["runs"][run]["outliers"]
            pick = outlier_indices(len(aux), out["count"], config["seed"], format_sigma(out["sigma"]))
            aux = aux if pick is None else _subset(aux, pick)
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
        weights=weights,
    )
    _log(f"trained {run} on {device} in {time.perf_counter() - start:.1f} s")
    meta = {
        "num_classes": bench.num_classes,
        "in_channels": int(splits[0].x.shape[1]),
        "image_format": fmt,
        "benchmark": bench.name,
    }
    payload = {"model": model.state_dict(), "config": rc, "meta": meta, "log": rows}
    if _gives_logits(config["runs"][run]["method"]):  # PALM/ADAPT's head and prototypes, ARPL's points
        payload["method"] = model.method_state  # (DIAS's GAN and copycat are not needed after training)
    checkpoint.save(model_out, payload)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=training.LOG_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(log_out, buf.getvalue())
    Path(checkpoint_path).unlink(missing_ok=True)  # finished: nothing left to resume


def _with_best_params(config: Mapping[str, Any], run: str, best_json: str | None) -> Mapping[str, Any]:
    """``config`` with the best parameters of run's search merged into it (runs without ``hpo``:
    unchanged). ``best_json`` must come from the search of the current config (its study name)."""
    from oodflow import hpo

    spec = config["runs"][run]
    if spec.get("hpo") is None:
        return config
    if best_json is None:
        raise ValueError(f"run '{run}' has an hpo block: pass the best.json of its search (rule hpo)")
    best = read_json(best_json)
    expected = hpo.study_name(run, run_config(config, run))
    if best.get("study") != expected:
        raise ValueError(
            f"{best_json}: written by study '{best.get('study')}', but run '{run}' is now searched by "
            f"study '{expected}' (its config changed); rerun the hpo rule"
        )
    _log(f"{run}: best parameters of {expected} (trial {best['number']}): {best['params']}")
    return {**config, "runs": {**config["runs"], run: hpo.merge_params(spec, best["params"])}}


def _subset(split, indices: np.ndarray):
    import torch

    from oodflow.training import Split

    idx = torch.from_numpy(indices)
    return Split(split.x[idx], split.y[idx])


def _aux_training_indices(aux_npz: str, n_aux: int, holdout_npz: str | None) -> np.ndarray:
    """Indices of the ``n_aux`` images of ``aux_npz`` outside the search's held-out ones."""
    from oodflow import hpo

    if holdout_npz is None:
        raise ValueError(f"{aux_npz}: a run with an hpo block needs the holdout.npz of its search")
    held = load_npz(holdout_npz, required={"indices": 1, "n_aux": 1})
    if held["n_aux"].tolist() != [n_aux]:
        raise ValueError(
            f"{holdout_npz}: drawn from a pool of {held['n_aux']} images, but {aux_npz} has {n_aux}"
        )
    return hpo.training_indices(n_aux, held["indices"])


# --------------------------------------------------------------------------- hyper-parameters
def hpo(
    config: Mapping[str, Any],
    run: str,
    train_npz: str,
    val_npz: str,
    aux_npz: str,
    out: Mapping[str, str],
    study_db: str,
    checkpoint_path: str,
    threads: int = 1,
    init_pt: str | None = None,
    weights: str | None = None,
) -> None:
    """Optuna search of ``run``'s ``hpo.params`` (see :mod:`oodflow.hpo`); resumes a stored study.

    A trial with parameters :math:`\\theta` trains the run with :math:`\\theta` merged in (from
    ``init_pt`` like the final run, for ``hpo.epochs`` epochs, on the aux pool minus the held-out
    images :math:`H`) and returns :math:`\\mathrm{FPR@95}(s(\\text{ID val}), s(H))` of the post-hoc
    score :math:`s` = ``hpo.score`` (minimised); validation accuracy and AUROC are kept as trial
    attributes. The OOD test sets are never read. Parameters the method rejects (``m_in >= m_out``)
    and trainings that diverge (non-finite scores) prune their trial.

    ``out`` maps ``best`` (JSON), ``trials`` (CSV), ``holdout`` (npz: sorted ``indices`` into
    ``aux_npz`` and ``n_aux``, its size as a 1-element array), ``history`` and ``importance``
    (PNG) to paths. ``study_db`` is the SQLite file used unless ``hpo.storage`` names another
    storage; ``checkpoint_path`` lets a killed trial's training resume (the resumed study proposes
    the same parameters again). ``weights``: the pretrained weights file of a ``pretrained`` model.
    """
    import torch

    from oodflow import checkpoint, features, metrics, training
    from oodflow import hpo as search
    from oodflow.config import check_parameters
    from oodflow.methods import build_method
    from oodflow.report import hpo_figures
    from oodflow.scores import Cache, Head, build_score
    from oodflow.seeding import configure_determinism, derive_seed, resolve_device
    from oodflow.seeds import run_seed

    spec, seed = config["runs"][run], run_seed(config, run)
    h = spec.get("hpo")
    if h is None:
        raise ValueError(f"run '{run}' has no hpo block to search")
    check_parameters({"runs": {run: spec}})
    configure_determinism(threads)
    device = resolve_device(config["device"])
    bench, fmt = _benchmark(config), config["benchmark"]["image_format"]
    train_split, val_split = (_load_split(path, bench, fmt) for path in (train_npz, val_npz))
    aux = _load_split(aux_npz, bench, fmt)
    held = search.holdout_indices(len(aux), h["holdout"], seed)
    save_npz(out["holdout"], indices=held, n_aux=np.array([len(aux)], dtype=np.int64))
    aux_train = _subset(aux, search.training_indices(len(aux), held))
    aux_val = aux.x[torch.from_numpy(held)].numpy()
    init_state = checkpoint.load(init_pt)["model"] if init_pt else None
    name = search.study_name(run, run_config(config, run))
    objective_text = (
        f"minimise FPR@95 of score '{h['score']}': ID validation split vs {len(held)} held-out aux images"
    )

    def objective(params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        trial = search.merge_params(spec, params)
        trial["epochs"] = h["epochs"] or spec["epochs"]
        try:
            build_method(trial["method"], **trial["method_args"])
        except ValueError as err:
            raise search.Infeasible(str(err)) from None
        cfg = run_config({**config, "runs": {**config["runs"], run: trial}}, run)
        model, rows = training.train(
            cfg,
            train_split,
            val_split,
            num_classes=bench.num_classes,
            device=device,
            checkpoint_path=checkpoint_path,
            log=_log,
            aux_split=aux_train,
            init_state=init_state,
            weights=weights,
        )
        Path(checkpoint_path).unlink(missing_ok=True)  # the trial's training is done

        state = getattr(model, "method_state", None)
        method = _inference_method(model, cfg["run"], state, bench.num_classes, device)

        def cache_of(x: np.ndarray, labels: np.ndarray | None = None) -> Cache:
            logits, feats = features.extract(model, x, device=device, method=method)
            if not (np.isfinite(logits).all() and np.isfinite(feats).all()):
                raise search.Infeasible("the network's outputs are not finite (training diverged)")
            return Cache(logits, feats, np.zeros(len(x), np.int64) if labels is None else labels)

        scorer = build_score(h["score"], **h["score_args"])
        if scorer.requires_fit:
            head = Head(model.head.weight.detach().cpu().numpy(), model.head.bias.detach().cpu().numpy())
            scorer.fit(cache_of(train_split.x.numpy(), train_split.y.numpy()), head)
        s_val = np.asarray(scorer.score(cache_of(val_split.x.numpy())), dtype=np.float64)
        s_aux = np.asarray(scorer.score(cache_of(aux_val)), dtype=np.float64)
        if not (np.isfinite(s_val).all() and np.isfinite(s_aux).all()):
            raise search.Infeasible(f"score '{h['score']}' is not finite (training diverged)")
        attrs = {"val_acc": float(rows[-1]["val_acc"]), "auroc": metrics.auroc(s_val, s_aux)}
        return metrics.fpr_at_95_tpr(s_val, s_aux), attrs

    start = time.perf_counter()
    url = search.storage_url(h["storage"], study_db)
    study = search.optimise(url, name, h["params"], h["n_trials"], (seed, "hpo", run), objective, log=_log)
    trials = search.considered_trials(study, h["n_trials"])
    write_json(out["best"], search.best_summary(name, trials, objective_text))
    write_text(out["trials"], search.trials_csv(trials))
    importances = search.param_importances(trials, derive_seed(seed, "hpo-importance", run))
    dpi = config["plots"]["dpi"]
    hpo_figures.history(trials, title=f"{run}: {name}", out=out["history"], dpi=dpi)
    hpo_figures.importance(importances, title=f"{run}: {name}", out=out["importance"], dpi=dpi)
    _log(f"hpo {run}: {h['n_trials']} complete trials in {time.perf_counter() - start:.1f} s")


# ------------------------------------------------------------------------------------ features
def extract(
    config: Mapping[str, Any],
    model_pt: str,
    data_npz: Sequence[str],
    outs: Sequence[str],
    threads: int = 1,
    batch_size: int = 512,
) -> None:
    """One forward pass per stored set (``data_npz[i]`` -> ``outs[i]``), the model loaded once:
    cache logits, penultimate features and labels, plus the head (so post-hoc scores never need
    torch).

    A model trained by a method without a trained classifier head (``HEADLESS_METHODS``: ``model.pt``
    holds the method's state) is cached through the method's ``infer`` hook
    (:func:`oodflow.features.extract_outputs`): PALM/ADAPT's ``logits`` are the nearest-prototype
    classifier's, ARPL's the reciprocal points', so ID accuracy is that classifier's. A method's
    further arrays are cached too: PALM/ADAPT's unit head ``embeddings`` per sample and, from its
    ``cache_arrays``, the ``prototypes`` and their classes ``prototype_labels`` (prototype figure).
    """
    from oodflow import features
    from oodflow.data.benchmarks import load_inputs
    from oodflow.seeding import configure_determinism, resolve_device
    from oodflow.training import load_model

    if len(data_npz) != len(outs):
        raise ValueError(f"extract: {len(data_npz)} data files but {len(outs)} outputs")
    configure_determinism(threads)
    device = resolve_device(config["device"])
    model, payload = load_model(model_pt, device)
    run = payload["config"]["run"]
    method = _inference_method(model, run, payload.get("method"), payload["meta"]["num_classes"], device)
    bench = eval_benchmark(config)
    head_w = model.head.weight.detach().cpu().numpy()
    head_b = model.head.bias.detach().cpu().numpy()
    constants = {}
    if method is not None and hasattr(method, "cache_arrays"):
        constants = {k: v.detach().cpu().numpy() for k, v in method.cache_arrays().items()}
        constants = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in constants.items()}
    for data, out in zip(data_npz, outs, strict=True):
        start = time.perf_counter()
        x, y = load_inputs(data, bench, config["benchmark"]["image_format"])
        arrays = features.extract_outputs(model, x, batch_size=batch_size, device=device, method=method)
        save_npz(out, labels=y, head_weight=head_w, head_bias=head_b, **arrays, **constants)
        _log(
            f"{data}: {len(y)} samples, logits {arrays['logits'].shape}, features "
            f"{arrays['features'].shape} in {time.perf_counter() - start:.2f} s"
        )


#: QUIRK of PALM/ADAPT's evaluation (docs/palm_adapt.md): inputs normalised with these
#: CIFAR-10-style statistics at test time, while training used the CIFAR-100 ones.
REFERENCE_EVAL_STATS = {"cifar10": ((0.491, 0.482, 0.447), (0.247, 0.244, 0.262))}


def eval_benchmark(config: Mapping[str, Any]):
    """The benchmark whose normalisation the cached features use: the configured one, or with
    ``evaluation.eval_stats: cifar10`` (QUIRK flag, off by default) the reference's eval stats."""
    import dataclasses

    bench, stats = _benchmark(config), config["evaluation"].get("eval_stats", "benchmark")
    if stats == "benchmark":
        return bench
    mean, std = REFERENCE_EVAL_STATS[stats]
    if len(bench.mean) != len(mean):
        raise ValueError(f"evaluation.eval_stats {stats} is for RGB inputs; benchmark '{bench.name}' is grey")
    return dataclasses.replace(bench, mean=mean, std=std)


def _gives_logits(method: str) -> bool:
    """Whether the training method ``method`` gives the model's logits itself (an ``infer`` hook:
    the methods of ``HEADLESS_METHODS``), so its trained state must be kept with the model."""
    from oodflow.methods import METHODS

    return hasattr(METHODS.get(method), "infer")


def _inference_method(
    model, run: Mapping[str, Any], state: Mapping[str, Any] | None, num_classes: int, device
):
    """The trained method of a run whose ``infer`` gives the model's logits and features (PALM,
    ADAPT, ARPL), rebuilt from its ``state``; None for methods whose logits are the model's head's."""
    if not _gives_logits(run["method"]):
        return None
    if state is None:
        raise ValueError(f"a model trained by method '{run['method']}' needs the method's trained state")
    from oodflow.methods import build_method

    method = build_method(run["method"], **run["method_args"])
    method.setup(model, num_classes, device)  # then overwritten by the trained state
    method.load_state_dict(state)
    method.train(False)
    return method


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

    Post-hoc scores read only the feature caches; network scores (ODIN, CORES) re-run the model on
    the stored inputs (``data``: set -> data npz).
    """
    from oodflow.scores import build_score

    scorer = build_score(name, **config["scores"][name])
    if not scorer.needs_network:
        posthoc_scores(config, [name], train_cache, caches, [out])
        return
    import torch

    from oodflow.data.benchmarks import load_inputs
    from oodflow.seeding import configure_determinism, resolve_device
    from oodflow.training import load_model

    start = time.perf_counter()
    configure_determinism(threads)
    device = resolve_device(config["device"])
    model, _ = load_model(model_pt, device)
    bench, fmt = _benchmark(config), config["benchmark"]["image_format"]
    scorer.set_normalisation(bench.mean, bench.std)  # ODIN's epsilon is in pixel units
    result: dict[str, np.ndarray] = {}
    for key, path in data.items():
        x, _ = load_inputs(path, bench, fmt)
        parts = [
            scorer.score_inputs(model, torch.from_numpy(x[i : i + 256]).to(device))
            for i in range(0, len(x), 256)
        ]
        result[key] = torch.cat(parts).detach().cpu().numpy().astype(np.float64)
    save_scores(name, result, out)
    _log(f"score {name}: {len(result)} sets in {time.perf_counter() - start:.2f} s")


def posthoc_scores(
    config: Mapping[str, Any],
    names: Sequence[str],
    train_cache: str,
    caches: Mapping[str, str],
    outs: Sequence[str],
) -> None:
    """Compute the post-hoc scores ``names`` (``outs[i]`` for ``names[i]``) from the feature caches
    of one run, each cache read once: one job per run instead of a process per score."""
    from oodflow.scores import Cache, Head, build_score

    if len(names) != len(outs):
        raise ValueError(f"posthoc_scores: {len(names)} scores but {len(outs)} outputs")
    scorers = [build_score(name, **config["scores"][name]) for name in names]
    network = [s.name for s in scorers if s.needs_network]
    if network:
        raise ValueError(f"posthoc_scores: {', '.join(network)} need the network (use steps.score)")
    train, head = Cache.from_npz(train_cache), Head.from_npz(train_cache)
    evaluated = {key: Cache.from_npz(path) for key, path in caches.items()}
    for name, scorer, out in zip(names, scorers, outs, strict=True):
        start = time.perf_counter()
        scorer.fit(train, head)
        result = {key: np.asarray(scorer.score(c), dtype=np.float64) for key, c in evaluated.items()}
        save_scores(name, result, out)
        _log(f"score {name}: {len(result)} sets in {time.perf_counter() - start:.2f} s")


def save_scores(name: str, result: Mapping[str, np.ndarray], out: str) -> None:
    """Write one score's arrays (set -> values) to ``out``; non-finite values are an error naming the set."""
    for key, values in result.items():
        if not np.all(np.isfinite(values)):
            raise FloatingPointError(f"score '{name}' produced non-finite values on '{key}'")
    save_npz(out, **result)


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
    if ev.get("ood_max") is not None and ev["ood_per_id"] is None:
        # PALM/ADAPT score at most 9,728 samples of each OOD set (a random 10k, then 19 batches of
        # 512 of a shuffled loader): one subset, seeded unless the QUIRK flag ood_max_unseeded is set
        first = load_npz(next(iter(score_files.values())))
        for ood in config["benchmark"]["ood_sets"]:
            seed = None if ev.get("ood_max_unseeded") else derive_seed(config["seed"], "ood-max", ood)
            n = len(first[ood])
            subsets[ood] = draw_ood_subsets(n, min(ev["ood_max"], n), 1, np.random.default_rng(seed))
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


def adversarial_eval(
    config: Mapping[str, Any],
    run: str,
    model_pt: str,
    id_npz: str,
    ood_npz: Mapping[str, str],
    out: str,
    threads: int = 1,
) -> None:
    """Adversarial OOD metrics of one run (config ``adversarial``; :mod:`oodflow.adversarial`).

    Every ID test and OOD input (``ood_npz``: OOD set -> data npz) gets one FGSM step per eps away
    from class ``target``; the scores of the perturbed inputs give one CSV row per OOD set x score x
    eps with AUROC, AUPR-In, AUPR-Out and FPR@95 (:func:`oodflow.report.adversarial.adversarial_frame`).
    """
    from oodflow.adversarial import adversarial_auroc_table, adversarial_scores
    from oodflow.attacks.outlier import pixel_space
    from oodflow.data.benchmarks import load_inputs
    from oodflow.report.adversarial import adversarial_frame
    from oodflow.seeding import configure_determinism, resolve_device
    from oodflow.training import load_model

    adv = config["adversarial"]
    configure_determinism(threads)
    device = resolve_device(config["device"])
    model, _ = load_model(model_pt, device)
    scale, bounds = pixel_space(*normalisation(config))
    kwargs = {
        "target": adv["target"],
        "batch_size": adv["batch_size"],
        "eps_scale": scale if adv["units"] == "pixel" else None,
        "clip": bounds if adv["clip"] else None,
        "device": device,
    }
    bench, fmt = _benchmark(config), config["benchmark"]["image_format"]
    start = time.perf_counter()

    def scores_of(path: str) -> dict[str, np.ndarray]:
        x, _ = load_inputs(path, bench, fmt)
        return adversarial_scores(model, x, adv["eps"], adv["scores"], **kwargs)

    id_scores = scores_of(id_npz)
    ood_scores = {name: scores_of(ood_npz[name]) for name in config["benchmark"]["ood_sets"]}
    rows = adversarial_auroc_table(adv["eps"], id_scores, ood_scores, accumulate=adv["accumulate"])
    spec = config["runs"][run]
    frame = adversarial_frame(rows, benchmark=bench.name, run=run, model=spec["model"], method=spec["method"])
    write_text(out, frame.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    _log(f"adversarial {run}: {len(frame)} rows in {time.perf_counter() - start:.1f} s")


def adversarial_report(
    config: Mapping[str, Any], run_csvs: Sequence[str], csv_out: str, png_out: str
) -> None:
    """All runs' adversarial rows in one CSV (in the given order) and the AUROC-vs-eps figure."""
    from oodflow.report.adversarial import adversarial_figure, combine

    frame = combine(run_csvs)
    write_text(csv_out, frame.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    title = f"{config['benchmark']['name']}: adversarial AUROC (mean over OOD sets)"
    adversarial_figure(frame, out=png_out, title=title, dpi=config["plots"]["dpi"])


def sweep_report(config: Mapping[str, Any], sweep: str, metrics_csv: str, csv_out: str, png_out: str) -> None:
    """Metrics of a sweep's runs against the swept value (config ``sweeps.<sweep>``), from metrics.csv."""
    import pandas as pd

    from oodflow.report.sweeps import sweep_figure, sweep_table
    from oodflow.sweeps import sweep_runs

    spec = config["sweeps"][sweep]
    table = sweep_table(pd.read_csv(metrics_csv), sweep_runs(sweep, spec), sweep, spec["param"])
    write_text(csv_out, table.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    title = f"{config['benchmark']['name']}: sweep {sweep} ({spec['param']})"
    sweep_figure(table, out=png_out, title=title, dpi=config["plots"]["dpi"])


def tables(metrics_csv: str, md_out: str, tex_out: str) -> None:
    from oodflow.report.tables import paper_tables

    md, tex = paper_tables(metrics_csv)
    write_text(md_out, md)
    write_text(tex_out, tex)


def scorecard(
    reference: str,
    tables: Mapping[str, str],
    md_out: str,
    csv_out: str,
    provenance: Mapping[str, str] | None = None,
    claims_md: str | None = None,
) -> None:
    """The reproduction scorecard from the reference file, the metrics tables (folder -> csv) and the
    folders' provenance records (folder -> provenance.json; folders without one are not marked),
    followed by the claims table ``claims_md`` (rule claims) if given."""
    from oodflow import provenance as prov
    from oodflow.report import scorecard as sc

    papers, entries = sc.load_scorecard(reference)
    scales = {name: prov.read_scale(path) for name, path in (provenance or {}).items()}
    rows = sc.build(entries, {name: sc.read_metrics(path) for name, path in tables.items()}, scales)
    md = sc.to_markdown(rows, papers, tables)
    if claims_md is not None:  # the claims table as the scorecard's last section
        md += "\n" + Path(claims_md).read_text().replace("# Claims", "## Claims", 1)
    write_text(md_out, md)
    write_text(csv_out, sc.to_csv(rows))


def claims(config: Mapping[str, Any], registry: str, out: Mapping[str, str]) -> None:
    """The claims table (``out``: md, csv, png) of a validated config, read from its results
    (:mod:`oodflow.report.claims_data`) with the registry ``registry``."""
    from oodflow.report import claims as cl
    from oodflow.report.claims_data import evaluate

    papers, entries = cl.load_claims(registry)
    rows = evaluate(config, entries)
    write_text(out["md"], cl.to_markdown(rows, papers, header="# Claims on this config's benchmarks"))
    write_text(out["csv"], cl.to_csv(rows))
    cl.forest_figure(rows, out["png"], dpi=config["plots"]["dpi"])


def table_html(md_in: str, html_out: str, title: str | None = None) -> None:
    """The Markdown table ``md_in`` as a self-contained HTML page (the report shows HTML inline);
    the title defaults to ``"<folder>: <table>"`` of ``html_out``
    (``results/report/<folder>/<table>.html``)."""
    from oodflow.report.html import markdown_page

    html = Path(html_out)
    write_text(html, markdown_page(Path(md_in).read_text(), title or f"{html.parent.name}: {html.stem}"))


def cross_paper(
    config: Mapping[str, Any], score_files: Mapping[tuple[str, str], str], out: Mapping[str, str]
) -> None:
    """The cross-paper table (``out``: csv, md, tex, png) of every run (seeds pooled) x score."""
    from oodflow.data import BENCHMARKS
    from oodflow.report import crosspaper
    from oodflow.seeds import base_run

    groups: dict[str, dict[str, Any]] = {}
    for run, spec in config["runs"].items():
        paper = "AOE (GAN-OE baseline)" if uses_gan(spec) and spec["method"] == "oe" else None
        group = groups.setdefault(base_run(run, spec), {"method": spec["method"], "paper": paper, "runs": []})
        group["runs"].append(run)
    ood_sets = list(config["benchmark"]["ood_sets"])
    replicates = config["report"]["bootstrap"]
    frame = crosspaper.cross_paper_frame(groups, score_files, ood_sets, replicates, config["seed"])
    bench = config["benchmark"]["name"]
    scale = "embedded" if BENCHMARKS.get(bench).source is None else "paper"
    write_text(out["csv"], frame.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    write_text(out["md"], crosspaper.markdown(frame, bench, ood_sets, replicates, scale))
    write_text(out["tex"], crosspaper.latex(frame, bench))
    crosspaper.ranking_figure(frame, out["png"], bench, dpi=config["plots"]["dpi"])


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
    # a rule input is relative to the working directory (not to the repository root, as config
    # values are): read it as given
    ref = load_reference(Path(reference).absolute(), bench.ood_sets) if reference else None
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


def prototype_figure(
    config: Mapping[str, Any], run: str, train_cache: str, ood_cache: str, ood: str, out: str
) -> None:
    """PCA projection of a prototype run's (PALM, ADAPT) unit head embeddings of the ID training
    set, its prototypes and the OOD set ``ood`` (arrays the feature caches of such runs hold)."""
    from oodflow.report import figures as fig

    need = {"embeddings": 2, "labels": 1, "prototypes": 2, "prototype_labels": 1}
    train = load_npz(train_cache, required=need)
    other = load_npz(ood_cache, required={"embeddings": 2})
    fig.prototype_projection(
        train["embeddings"],
        train["labels"],
        train["prototypes"],
        train["prototype_labels"],
        other["embeddings"],
        ood_name=ood,
        title=f"{config['benchmark']['name']} / {run}: head embeddings, PCA of ID train",
        out=out,
        dpi=config["plots"]["dpi"],
    )


# ------------------------------------------------------------------------ paper-scale datasets
def download(dataset: str, filename: str, out: str, smoke: bool = False) -> None:
    """Fetch one resource of a catalog dataset (verified, atomic; mirrors and retries).

    Where from: :func:`oodflow.mirrors.sources` (``OODFLOW_MIRRORS``, ``OODFLOW_MIRRORS_ONLY``; with
    ``smoke``, the smoke mirror of fakes and its checksums). ``OODFLOW_CHECKSUMS`` points the
    pinned-sha256 manifest elsewhere than ``config/checksums.json``.
    """
    from oodflow.data.catalog import DATASETS, resource

    fetch_resource(resource(DATASETS.get(dataset), filename), dataset, out, smoke=smoke)


def download_weights(name: str, out: str, smoke: bool = False) -> None:
    """Fetch the file of weights-catalog entry ``name`` (:data:`oodflow.models.weights.WEIGHTS`) to
    ``out``, through the same verified path and environment as :func:`download` (mirror layout
    ``<base>/<name>/<filename>``; with ``smoke``, the fake of the smoke mirror)."""
    from oodflow.models.weights import WEIGHTS

    fetch_resource(WEIGHTS.get(name).resource, name, out, kind="weights", smoke=smoke)


def fetch_resource(res, name: str, out: str, kind: str = "dataset", smoke: bool = False) -> None:
    """Fetch catalog resource ``res`` of entry ``name`` (a dataset or a weights entry, ``kind``) to
    ``out``: the URLs of :func:`oodflow.mirrors.sources`, the pinned-checksum manifest of
    ``OODFLOW_CHECKSUMS`` (default ``config/checksums.json``), :func:`oodflow.download.fetch`. The
    one download path of the workflow.

    Raises:
        oodflow.mirrors.MirrorError: no URL to try, or a smoke mirror where it must not serve.
        oodflow.download.DownloadError: no URL delivered a verified file.
        ValueError: ``out`` is not ``<folder>/<res.filename>``.
    """
    import os

    from oodflow.download import DEFAULT_MANIFEST, PinnedChecksums, fetch
    from oodflow.mirrors import sources

    if Path(out).name != res.filename:
        raise ValueError(f"{kind} '{name}' has the file '{res.filename}', not '{Path(out).name}'")
    res = sources(res, name, smoke=smoke)
    pins = PinnedChecksums(os.environ.get("OODFLOW_CHECKSUMS", DEFAULT_MANIFEST))
    fetch(res, Path(out).parent, dataset=name, pins=pins, kind=kind)


def prepare(
    dataset: str,
    downloads: Sequence[str],
    raw_dir: str,
    out_dir: str,
    parser_args: Mapping[str, Any] | None = None,
    user_dir: str | None = None,
) -> None:
    """Unpack a dataset's archives safely into ``raw_dir`` and parse the prepared form.

    ``raw_dir`` gets the upstream layout the parsers expect (e.g. ``raw/cifar-10-batches-py/``):
    the top-level entries of every archive, as real files (so that DVC can version the folder;
    DVC skips symbolic links to folders), and a relative symbolic link to every plain downloaded
    file. Archives are unpacked into ``raw_dir/.unpacking/`` first, then moved into place.
    ``parser_args`` are keyword arguments of the parser (config ``datasets.<name>.parser_args``),
    checked against its signature before anything is unpacked and recorded in
    ``out_dir/parser_args.json`` (see :func:`check_prepared`).

    Entries the user supplies by hand (the spec's ``user_supplied``, e.g. NUS-WIDE's ``Flickr``) are
    read from ``user_dir`` (default: ``raw_dir``'s sibling ``user/``, i.e.
    ``resources/datasets/<name>/user/``), outside every rule output, and linked into ``raw_dir``
    (relative symbolic links): rerunning or failing the job, which deletes ``raw_dir``, never touches
    them. A missing entry is a FileNotFoundError, raised before anything is unpacked, that says where
    to put it and where to get it.
    """
    import os
    import shutil

    from oodflow.archives import extract, is_archive
    from oodflow.config import PARSER_SUPPLIED, _check_kwargs
    from oodflow.data.catalog import DATASETS, USER_FOLDER, parser

    spec = DATASETS.get(dataset)
    parse, kwargs = parser(spec), dict(parser_args or {})
    where = f"datasets.{dataset}.parser_args"
    _check_kwargs(parse, kwargs, where, f"the parser of '{dataset}'", PARSER_SUPPLIED)
    raw = Path(raw_dir)
    user = Path(user_dir) if user_dir is not None else raw.parent / USER_FOLDER
    for entry in spec.user_supplied:
        if not (user / entry).exists():
            raise FileNotFoundError(
                f"{dataset}: {user / entry} is missing. '{entry}' is not downloadable: obtain it as the "
                f"homepage says ({spec.homepage}) and put it, or a symbolic link to it, at {user / entry} "
                f"(outside the rule outputs, so that no rule deletes it); see the catalog notes of "
                f"'{dataset}'"
            )
    raw.mkdir(parents=True, exist_ok=True)
    staging = raw / ".unpacking"

    def place(name: str) -> Path:
        target = raw / name
        if target.is_symlink() or target.exists():
            raise FileExistsError(f"{dataset}: two resources both provide '{name}'")
        return target

    try:
        for path in map(Path, downloads):
            if spec.extract and is_archive(path):
                unpacked = extract(path, staging / path.name)
                for entry in sorted(unpacked.iterdir()):
                    if not entry.name.startswith("."):  # e.g. the unpacker's completion marker
                        entry.rename(place(entry.name))
            elif not path.name.startswith("."):
                place(path.name).symlink_to(os.path.relpath(path.resolve(), raw.resolve()))
        for entry in spec.user_supplied:  # relative, and not resolved: user/<entry> may itself be a link
            place(entry).symlink_to(
                os.path.relpath(os.path.abspath(user / entry), os.path.abspath(raw)), target_is_directory=True
            )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary = parse(raw, Path(out_dir), **kwargs)
    write_json(Path(out_dir) / PARSER_ARGS_RECORD, kwargs)
    _log(f"prepared {dataset}: {summary.get('splits')}")


# -------------------------------------------------------------------------------- GAN outliers
def gan_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """What determines the in-workflow GAN: the seed, the ID data and ``benchmark.gan``'s training keys."""
    g = config["benchmark"]["gan"]
    keys = ("epochs", "batch_size", "lr", "latent_dim", "width")
    return {"data": data_config(config, "id"), "gan": {k: g[k] for k in keys}, "seed": config["seed"]}


def gan_sigmas(config: Mapping[str, Any]) -> list[str]:
    """The latent standard deviations (file-name form, e.g. ``"2.0"``) the runs ask GAN outliers for."""
    from oodflow.gan import format_sigma

    found = {
        format_sigma(spec["outliers"]["sigma"])
        for spec in config["runs"].values()
        if (spec.get("outliers") or {}).get("source") == "gan"
    }
    return sorted(found, key=float)


def train_gan(
    config: Mapping[str, Any],
    train_npz: str,
    model_out: str,
    log_out: str,
    checkpoint_path: str,
    threads: int = 1,
) -> None:
    """Train the DCGAN of ``benchmark.gan`` on the stored ID training set (its labels are ignored)."""
    from oodflow import checkpoint, gan
    from oodflow.data.stored import load_set
    from oodflow.seeding import configure_determinism, resolve_device

    configure_determinism(threads)
    device = resolve_device(config["device"])
    x, _ = load_set(train_npz)
    start = time.perf_counter()
    gen, rows = gan.train_gan(
        gan.channels_first(x), config["benchmark"]["gan"], config["seed"], device=device,
        checkpoint_path=checkpoint_path, log=_log,
    )  # fmt: skip
    _log(f"trained the GAN on {len(x)} images ({device}) in {time.perf_counter() - start:.1f} s")
    cfg = {
        "seed": config["seed"],
        "gan": gan_config(config)["gan"],
        "shape": [int(s) for s in gan.channels_first(x[:1]).shape[1:]],
    }
    checkpoint.save(model_out, {"model": gen.state_dict(), "config": cfg, "log": rows})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=gan.LOG_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(log_out, buf.getvalue())
    Path(checkpoint_path).unlink(missing_ok=True)


def sample_gan(config: Mapping[str, Any], model_pt: str, sigma: str, out: str, threads: int = 1) -> None:
    """``benchmark.gan.samples`` images of the trained generator at latent std ``sigma``, as a sample
    file (``x`` uint8 ``(N, C, H, W)``, ``y = -1``)."""
    from oodflow import gan
    from oodflow.seeding import configure_determinism, resolve_device

    configure_determinism(threads)
    device = resolve_device(config["device"])
    gen, _ = gan.generator_from_checkpoint(model_pt, device)
    x = gan.sample(gen, config["benchmark"]["gan"]["samples"], float(sigma), config["seed"])
    gan.check_gan_samples({"x": x}, out)
    save_npz(out, x=x, y=np.full(len(x), -1, dtype=np.int64))
    _log(f"sampled {len(x)} GAN images at sigma {sigma}: {x.shape}")


def gan_pool(
    config: Mapping[str, Any],
    sigma: str,
    out: str,
    samples_npz: str | None = None,
    prepared: str | None = None,
) -> None:
    """The GAN outlier pool at ``sigma`` as a stored set (``y = -1``), read as the aux pool is.

    ``samples_npz``: a sample file of the in-workflow GAN (``benchmark.gan.source: trained``), whose
    images have the stored ID images' size. ``prepared``: the prepared folder of the published
    ``cifar100_gan_<sigma>`` catalog dataset (``source: published``, 32x32 RGB benchmarks).
    """
    from oodflow import gan
    from oodflow.data import stored
    from oodflow.data.catalog import gan_dataset

    if (samples_npz is None) == (prepared is None):
        raise ValueError("gan_pool: pass exactly one of samples_npz (trained GAN) and prepared (published)")
    if samples_npz is not None:
        from oodflow.data.benchmarks import sample_shape

        bench = _benchmark(config)
        expected = sample_shape(bench)
        samples = gan.load_gan_samples(samples_npz, image_shape=None)
        if tuple(samples.shape[1:]) != expected:
            raise FormatError(
                f"{samples_npz}: GAN samples of shape (C, H, W) = {tuple(samples.shape[1:])} do not fit "
                f"benchmark '{bench.name}', whose images are {expected}; sample them from a GAN "
                "trained on this benchmark's images"
            )
        x = gan.stored_form(samples)
        sources = [f"trained DCGAN, sigma {sigma}"]
    else:
        dataset = gan_dataset(sigma)
        check_prepared(config, dataset, prepared)
        x, _ = stored.load_set(Path(prepared) / "train.npz", image_shape=(32, 32, 3))
        sources = [dataset]
    y = np.full(len(x), -1, dtype=np.int64)
    stored.write_set(
        out, x, y, name=f"gan-{sigma}", sources=sources, seed=config["seed"], details={"sigma": float(sigma)}
    )


def outlier_indices(n_pool: int, count: int | None, seed: int, sigma: str) -> np.ndarray | None:
    """The seeded ``count`` of ``n_pool`` GAN outliers a run trains on (``None``: all of them).

    Runs with equal ``(seed, sigma, count)`` share their outliers: a seeded permutation's first
    ``count`` indices, sorted.
    """
    from oodflow.seeding import derive_seed

    if count is None or count >= n_pool:
        return None
    rng = np.random.default_rng(derive_seed(seed, "gan-outliers", sigma, count))
    return np.sort(rng.permutation(n_pool)[:count])


# ------------------------------------------------------------------------ open-set recognition
# The OSR sub-DAG's steps (rules/osr.smk) live in oodflow.osr.workflow (imports no torch).
from oodflow.osr.workflow import osr_data, osr_eval, osr_report, osr_train  # noqa: E402, F401
