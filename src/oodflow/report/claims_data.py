"""Where a claim's numbers live in a config's results, and the claims table built from them.

:func:`files` lists what the rule ``claims`` reads (so Snakemake knows its inputs) and :func:`evaluate`
reads exactly those files; both follow :func:`units`, which pairs the claim's two runs seed by seed:

* ``spine``: runs are grouped by name without their seed suffix (:func:`oodflow.seeds.base_run`) and
  paired by seed; a side reads ``scores/<run>/<score>.npz`` (``id`` and one array per OOD set), or the
  test feature cache ``features/<run>/test.npz`` (``logits``, ``labels``) for accuracy.
* ``multilabel``: one run each (the section has no per-run seeds); ``scores/<run>/<score>.npz``, the
  test cache's ``targets`` for the tail-ID subset (:func:`oodflow.multilabel.metrics.tail_mask`, head
  labels ranked as ``multilabel.tail.rank_by`` says).
* ``osr``: each (split family, dataset, trial) pairs the two methods on its test images; a side reads
  ``<method>/cache.npz`` and scores it with the method's own protocol score (``score: protocol``,
  :data:`oodflow.osr.PROTOCOL_SCORES`) or the one named. Trials play the role of seeds.

The library :mod:`oodflow.report.claims` does the statistics and the formats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from oodflow import provenance
from oodflow.io import load_npz
from oodflow.report import claims as cl
from oodflow.seeding import derive_seed
from oodflow.seeds import base_run, run_seed


@dataclass(frozen=True)
class Unit:
    """One seed's (or OSR trial's) pair of runs; ``root`` is its results folder."""

    label: str
    root: str
    run_a: str
    run_b: str | None


def _spine_runs(config: Mapping[str, Any]) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {}
    for name, spec in config.get("runs", {}).items():
        out.setdefault(base_run(name, spec), {})[run_seed(config, name)] = name
    return out


def _scores_of(config: Mapping[str, Any], part: str, run: str) -> list[str]:
    if part == "multilabel":
        return list(config["multilabel"]["scores"])
    return config["runs"][run].get("scores") or list(config["scores"])


def ood_sets(config: Mapping[str, Any], part: str) -> list[str]:
    if part == "osr":
        return ["unknown"]
    if part == "multilabel":
        return list(config["multilabel"]["benchmark"]["ood_sets"])
    return list(config["benchmark"]["ood_sets"])


def units(config: Mapping[str, Any], claim: cl.Claim) -> list[Unit] | str:
    """The pairs a claim compares, or why it cannot be measured with this config ("not run" reason)."""
    part = claim.part
    if part == "osr":
        return _osr_units(config, claim)
    present = part == "spine" and config.get("runs") or part == "multilabel" and config.get("multilabel")
    if not present:
        return f"no {part} section"
    root = f"results/{provenance.folder(config, part)}"
    if part == "multilabel":
        runs = {name: {config["seed"]: name} for name in config["multilabel"]["runs"]}
    else:
        runs = _spine_runs(config)
    if claim.kind == "spearman":
        return _spearman_units(config, claim, root)
    sides = [s for s in (claim.a, claim.b) if s is not None]
    for side in sides:
        if side.run not in runs:
            return f"no run {side.run}"
        if side.score != "-":
            for run in runs[side.run].values():
                if side.score not in _scores_of(config, part, run):
                    return f"run {run} has no score {side.score}"
    if claim.ood_set not in ("id", "mean", "every", *ood_sets(config, part)):
        return f"no OOD set {claim.ood_set}"
    seeds = sorted(set(runs[claim.a.run]) & set(runs[claim.b.run]))
    if not seeds:
        return f"no seed that ran both {claim.a.run} and {claim.b.run}"
    if claim.kind == "adversarial_drop":
        adv = config.get("adversarial")
        need = {runs[s.run][seed] for s in sides for seed in seeds}
        if adv is None or not need <= set(adv["runs"]) or claim.a.score not in adv["scores"]:
            return "no adversarial evaluation of both runs with that score"
    return [Unit(f"seed {s}", root, runs[claim.a.run][s], runs[claim.b.run][s]) for s in seeds]


def _osr_units(config: Mapping[str, Any], claim: cl.Claim) -> list[Unit] | str:
    osr = config.get("osr")
    if not osr:
        return "no osr section"
    for side in (claim.a, claim.b):
        if side.run not in osr["methods"]:
            return f"no OSR method {side.run}"
    root = f"results/{osr['name']}"
    return [
        Unit(f"{f}/{d}/trial{t}", f"{root}/{f}/{d}/trial{t}", claim.a.run, claim.b.run)
        for f in osr["splits"] for d in osr["datasets"] for t in osr["trials"]
    ]  # fmt: skip


def _spearman_units(config: Mapping[str, Any], claim: cl.Claim, root: str) -> list[Unit] | str:
    sel = config["multilabel"].get("oe_selection")
    if sel is None:
        return "no multilabel.oe_selection"
    needed = [f"{claim.a.run}-{c}" for c in sel["candidates"]]
    missing = [r for r in needed if r not in config["multilabel"]["runs"]]
    if missing:
        return f"needs one OE run per candidate set, named {', '.join(missing)}"
    return [Unit(f"seed {config['seed']}", root, claim.a.run, None)]


def _side_files(unit: Unit, claim: cl.Claim, run: str, side: cl.Side) -> list[str]:
    if claim.part == "osr":
        return [f"{unit.root}/{run}/cache.npz"]
    if side.score == "-":
        return [f"{unit.root}/features/{run}/test.npz"]
    out = [f"{unit.root}/scores/{run}/{side.score}.npz"]
    if claim.tail_j is not None:
        out.append(f"{unit.root}/features/{run}/test.npz")
    return out


def claim_files(config: Mapping[str, Any], claim: cl.Claim) -> list[str]:
    found = units(config, claim)
    if isinstance(found, str):
        return []
    if claim.kind == "adversarial_drop":
        return [f"{found[0].root}/tables/adversarial.csv"]
    if claim.kind == "spearman":
        return [f"{found[0].root}/tables/ml_oe_selection.csv", f"{found[0].root}/tables/metrics.csv"]
    out = []
    for unit in found:
        out += _side_files(unit, claim, unit.run_a, claim.a) + _side_files(unit, claim, unit.run_b, claim.b)
    if claim.tail_j is not None and config["multilabel"]["tail"].get("rank_by", "test") == "train":
        out.append(f"{found[0].root}/data/train.npz")
    return out


def files(config: Mapping[str, Any], claims: Sequence[cl.Claim]) -> list[str]:
    """Every file the claims of this config read (sorted, no duplicates)."""
    return sorted({path for claim in claims for path in claim_files(config, claim)})


# ---------------------------------------------------------------------------------- loading
def _osr_sample(config: Mapping[str, Any], path: Path, method: str, score: str) -> cl.Sample:
    from oodflow.osr import PROTOCOL_SCORES
    from oodflow.osr.evaluate import PROTOCOL_SCORE_FUNCTIONS

    arrays = load_npz(path, required={"known_logits": 2, "known_labels": 1, "unknown_logits": 2})
    name = PROTOCOL_SCORES.get(method, "msp") if score == "protocol" else score
    if name not in PROTOCOL_SCORE_FUNCTIONS:
        raise ValueError(
            f"claims: OSR score '{name}' unknown; valid: protocol, {', '.join(PROTOCOL_SCORE_FUNCTIONS)}"
        )
    temp = float(config["osr"]["methods"][method].get("temp", 1.0))
    fn = PROTOCOL_SCORE_FUNCTIONS[name]
    known = arrays["known_logits"]
    correct = known.argmax(1) == arrays["known_labels"]
    return cl.Sample(fn(known, temp), {"unknown": fn(arrays["unknown_logits"], temp)}, correct)


def _sample(config, claim: cl.Claim, unit: Unit, run: str, side: cl.Side, base: Path, sets) -> cl.Sample:
    if claim.part == "osr":
        return _osr_sample(config, base / unit.root / run / "cache.npz", run, side.score)
    if side.score == "-":
        cache = load_npz(
            base / unit.root / "features" / run / "test.npz", required={"logits": 2, "labels": 1}
        )
        correct = cache["logits"].argmax(1) == cache["labels"]
        return cl.Sample(np.zeros(correct.size), {}, correct)
    path = base / unit.root / "scores" / run / f"{side.score}.npz"
    arrays = load_npz(path, required={"id": 1, **dict.fromkeys(sets, 1)})
    tail = None
    if claim.tail_j is not None:
        from oodflow.multilabel.metrics import head_labels, tail_mask

        y = load_npz(base / unit.root / "features" / run / "test.npz", required={"targets": 2})["targets"]
        if config["multilabel"]["tail"].get("rank_by", "test") == "train":
            order = head_labels(load_npz(base / unit.root / "data" / "train.npz", required={"y": 2})["y"])
        else:
            order = head_labels(y)
        tail = tail_mask(y, order, claim.tail_j)
    return cl.Sample(arrays["id"], {o: arrays[o] for o in sets}, None, tail)


def _expand(config: Mapping[str, Any], claim: cl.Claim) -> list[tuple[str, cl.Claim, list[str]]]:
    """(row id, claim, OOD sets averaged): an ``every`` claim is one row per OOD set."""
    from dataclasses import replace

    sets = ood_sets(config, claim.part) if claim.part != "spine" or config.get("runs") else []
    if claim.ood_set == "every":
        return [(f"{claim.id}/{o}", replace(claim, id=f"{claim.id}/{o}", ood_set=o), [o]) for o in sets]
    if claim.ood_set == "mean":
        return [(claim.id, claim, sets)]
    return [(claim.id, claim, [] if claim.ood_set == "id" else [claim.ood_set])]


def _paired(config, claim, found, sets, base, replicates, seed) -> tuple[list, list, list, np.ndarray]:
    rng = np.random.default_rng(derive_seed(seed, "claims", claim.id))
    a_vals, b_vals, d_vals, reps = [], [], [], []
    for unit in found:
        a = _sample(config, claim, unit, unit.run_a, claim.a, base, sets)
        b = _sample(config, claim, unit, unit.run_b, claim.b, base, sets)
        try:
            va, vb, d, r = cl.paired_differences(a, b, claim.metric, sets, replicates, rng, claim.relative)
        except ValueError as err:
            raise ValueError(
                f"claim {claim.id} ({unit.label}, {unit.run_a} vs {unit.run_b}): {err}"
            ) from None
        a_vals.append(va), b_vals.append(vb), d_vals.append(d), reps.append(r)
    return a_vals, b_vals, d_vals, cl.over_seeds(np.asarray(reps), rng)


def _adversarial(claim, found, sets, base, replicates, seed) -> tuple[list, list, list, np.ndarray | None]:
    import pandas as pd

    table = pd.read_csv(base / found[0].root / "tables" / "adversarial.csv")
    table = table[(table.score == claim.a.score) & table.ood_set.isin(sets)]
    lo, hi = table.eps.min(), table.eps.max()

    def drop(run: str) -> float:
        rows = table[table.run == run]
        if rows.empty:
            raise ValueError(f"claims {claim.id}: tables/adversarial.csv has no rows of run {run}")
        return float(rows[rows.eps == lo][claim.metric].mean() - rows[rows.eps == hi][claim.metric].mean())

    a_vals = [drop(u.run_a) for u in found]
    b_vals = [drop(u.run_b) for u in found]
    d_vals = [b - a for a, b in zip(a_vals, b_vals, strict=True)]  # positive: a falls less than b
    rng = np.random.default_rng(derive_seed(seed, "claims", claim.id))
    reps = None
    if len(d_vals) >= cl.MIN_SEEDS:
        reps = cl.over_seeds(np.repeat(np.asarray(d_vals)[:, None], replicates, axis=1), rng)
    return a_vals, b_vals, d_vals, reps


def _spearman(claim, found, sets, base) -> float:
    import pandas as pd

    root = base / found[0].root / "tables"
    ranking = pd.read_csv(root / "ml_oe_selection.csv")
    metrics = pd.read_csv(root / "metrics.csv")
    values = []
    for cand in ranking.oe_set:
        rows = metrics[(metrics.run == f"{claim.a.run}-{cand}") & (metrics.score == claim.a.score)
                       & (metrics.metric == claim.metric) & metrics.ood_set.isin(sets)]  # fmt: skip
        values.append(float(rows.value.mean()))
    return cl.spearman(-ranking["rank"].to_numpy(float), values)


def evaluate(
    config: Mapping[str, Any],
    claims: Sequence[cl.Claim],
    base: str | Path = ".",
    replicates: int | None = None,
) -> list[dict[str, Any]]:
    """The claims table's rows for a validated config whose results lie under ``base``."""
    base = Path(base)
    replicates = replicates or config.get("report", {}).get("bootstrap", 200)
    rows = []
    for claim in claims:
        found = units(config, claim)
        for _, c, sets in _expand(config, claim) if not isinstance(found, str) else [(claim.id, claim, [])]:
            if isinstance(found, str):
                rows.append(cl.not_run(c, found))
                continue
            scale = provenance.scale(config, c.part)
            label = f"{len(found)} trial{'s' if len(found) != 1 else ''}" if c.part == "osr" else None
            if c.kind == "paired":
                a, b, d, reps = _paired(config, c, found, sets, base, replicates, config["seed"])
            elif c.kind == "adversarial_drop":
                a, b, d, reps = _adversarial(c, found, sets, base, replicates, config["seed"])
            else:
                a, b, d, reps = [], [], [_spearman(c, found, sets, base)], None
            rows.append(cl.summarise(c, a, b, d, reps, scale, label))
    return rows
