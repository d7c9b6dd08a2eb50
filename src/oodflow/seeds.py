"""Seeds: every training run repeated with several seeds, so every table cell can carry mean ± std.

A config's ``seeds: [0, 1, 2]`` turns each run ``R`` into the runs ``R-s0``, ``R-s1`` and ``R-s2``
at validation time (after sweeps, before any job runs), each with ``seed`` set in its spec. The seed
is a run wildcard like any other: a cluster trains all copies in parallel. A fine-tuned run follows
its parent's seed (``oe-s1`` starts from ``baseline-s1``); comparisons and adversarial evaluation are
repeated per seed too.

What the seed changes: the run's initial weights, batch order, augmentation and dropout (and its
Optuna search, for runs with ``hpo``). What it does not: the data (ID splits, OOD sets, auxiliary pool
and GAN), which stay those of the config's top-level ``seed``, so seeds measure training variance on
fixed data. A run that already has a ``seed`` in its spec (pinned by hand, or expanded by an earlier
validation) is left as it is, so validating twice changes nothing. No torch is imported.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["base_run", "expand_seeds", "run_seed", "seeded_name"]

_SUFFIX = re.compile(r"^(?P<base>.+)-s(?P<seed>[0-9]+)$")


class SeedError(ValueError):
    """Seeds cannot be expanded; the message names the key."""


def seeded_name(run: str, seed: int) -> str:
    return f"{run}-s{seed}"


def base_run(run: str, spec: Mapping[str, Any] | None = None) -> str:
    """The run name without its seed suffix (``baseline-s2`` -> ``baseline``), for aggregating seeds.

    Given the run's ``spec``, only a suffix equal to its seed is removed (a run called ``x-s1``
    without a seed keeps its name).
    """
    m = _SUFFIX.match(run)
    if m is None or (spec is not None and spec.get("seed") != int(m["seed"])):
        return run
    return m["base"]


def run_seed(config: Mapping[str, Any], run: str) -> int:
    """The seed a run trains with: its own ``seed`` if it has one, else the config's."""
    seed = config["runs"][run].get("seed")
    return config["seed"] if seed is None else seed


def expand_seeds(cfg: dict[str, Any]) -> None:
    """Repeat every run per seed of ``cfg["seeds"]`` (in place; nothing to do without seeds)."""
    seeds = cfg.get("seeds")
    if not seeds:
        return
    runs = cfg["runs"]
    todo = [name for name, spec in runs.items() if spec.get("seed") is None]
    renamed: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    for name, spec in runs.items():
        if name not in todo:
            out[name] = spec
            continue
        renamed[name] = []
        for seed in seeds:
            new = seeded_name(name, seed)
            copy_ = copy.deepcopy(dict(spec))
            copy_["seed"] = seed
            parent = spec.get("init_from")
            if parent in todo or (parent not in runs and seeded_name(parent, seed) in runs):
                copy_["init_from"] = seeded_name(parent, seed)
            # The same copy already there: a sweep run that a second validation added again.
            if new in runs and runs[new] != copy_:
                raise SeedError(f"config error at seeds: run '{name}' with seed {seed} would be called "
                                f"'{new}', which is already a run; rename one of them")  # fmt: skip
            out[new] = copy_
            renamed[name].append(new)
    cfg["runs"] = out
    adv = cfg.get("adversarial")
    if adv is not None and adv.get("runs"):
        adv["runs"] = [new for run in adv["runs"] for new in renamed.get(run, [run])]
    comparisons = cfg.get("report", {}).get("comparisons", [])
    expanded = []
    for comp in comparisons:
        base, cand = comp["baseline"], comp["candidate"]
        if base not in renamed and cand not in renamed:
            expanded.append(comp)
            continue
        for seed in seeds:
            expanded.append({
                **comp,
                "name": f"{comp['name']}-s{seed}",
                "baseline": seeded_name(base, seed) if base in renamed else base,
                "candidate": seeded_name(cand, seed) if cand in renamed else cand,
            })  # fmt: skip
    if comparisons:
        cfg["report"]["comparisons"] = expanded
