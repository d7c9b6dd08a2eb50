"""Hyper-parameter search of a run's training parameters with Optuna (the ``hpo`` rule).

A run with an ``hpo`` block is trained once per trial with parameters proposed by a TPE sampler;
each trial is scored by an objective the caller supplies (:func:`oodflow.steps.hpo`: FPR@95 of a
post-hoc score, ID validation split vs. auxiliary images held out of training; never the OOD test
sets). The best parameters then feed the run's final training (:func:`merge_params`).

Properties this module guarantees (and ``tests/test_hpo.py`` checks):

* **Resumable.** Trials live in an Optuna storage (an SQLite file by default, any SQLAlchemy URL
  otherwise). :func:`optimise` loads the study if it exists, marks trials left ``RUNNING`` by a
  killed job as ``FAIL`` (:func:`fail_stale_trials`), and runs trials one at a time until
  ``n_trials`` trials are ``COMPLETE``.
* **Deterministic, even across interruptions.** The sampler of each trial is a fresh
  ``TPESampler(seed=derive_seed(seed, "hpo", run, k) % 2**32)`` where ``k`` is the number of finished
  (``COMPLETE`` or ``PRUNED``) trials so far. TPE ignores ``FAIL`` trials, so a study that was
  killed and resumed proposes exactly the parameters an uninterrupted one does. Its outputs
  (``best.json``, ``trials.csv``, the figures) equal an uninterrupted search's byte for byte: they
  leave ``FAIL`` trials out and number the others in order (:func:`considered_trials`); only the
  storage keeps Optuna's own numbers, shifted by the failed trials.
* **Infeasible proposals do not crash.** An objective that raises :class:`Infeasible` (e.g. a
  sampled ``m_in >= m_out``, which energy fine-tuning rejects) marks its trial ``PRUNED``: it does
  not count towards ``n_trials``, and TPE learns to avoid that region (it ranks pruned trials
  without values below every complete one).

Nothing here imports torch; optuna is imported by the functions that need it.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from oodflow.seeding import derive_seed

if TYPE_CHECKING:  # pragma: no cover
    import optuna

#: Tunable parameters that belong to the run itself; every other name is a method argument.
RUN_PARAMS = ("lr", "weight_decay")

#: Keys of a run's ``hpo`` block that do not change what a trial computes (so not its study).
_BOOKKEEPING = ("n_trials", "storage")

#: Pruned (infeasible) proposals tolerated per wanted complete trial before giving up.
MAX_PRUNED_PER_TRIAL = 10


class Infeasible(Exception):
    """Raised by an objective for parameters that cannot be trained (the trial is pruned)."""


# ------------------------------------------------------------------------------- parameters
def merge_params(run_spec: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``run_spec`` with ``params`` merged in: ``lr``/``weight_decay`` replace the run's values,
    every other name replaces (or adds) a ``method_args`` entry. The input is not modified."""
    merged = copy.deepcopy(dict(run_spec))
    merged["method_args"] = dict(merged.get("method_args", {}))
    for name, value in params.items():
        if name in RUN_PARAMS:
            merged[name] = value
        else:
            merged["method_args"][name] = value
    return merged


def suggest(trial: optuna.trial.Trial, space: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Ask ``trial`` for every parameter of ``space`` (name -> {low, high, log, int}), in sorted
    name order so the sampler's random stream is consumed the same way every time."""
    params = {}
    for name in sorted(space):
        p = space[name]
        if p.get("int", False):
            params[name] = trial.suggest_int(name, int(p["low"]), int(p["high"]), log=p.get("log", False))
        else:
            params[name] = trial.suggest_float(
                name, float(p["low"]), float(p["high"]), log=p.get("log", False)
            )
    return params


# ---------------------------------------------------------------------------------- holdout
def holdout_indices(n_aux: int, size: int, seed: int) -> np.ndarray:
    """Sorted indices of the ``size`` auxiliary images held out as validation outliers.

    A seeded draw without replacement, ``rng = default_rng(derive_seed(seed, "hpo-holdout"))``;
    the same for every run of a config, so all searches validate on the same images.
    """
    if not 0 < size < n_aux:
        raise ValueError(
            f"hpo.holdout must be between 1 and the aux pool size minus 1 ({n_aux - 1}), got {size}"
        )
    rng = np.random.default_rng(derive_seed(seed, "hpo-holdout"))
    return np.sort(rng.choice(n_aux, size=size, replace=False)).astype(np.int64)


def training_indices(n_aux: int, holdout: np.ndarray) -> np.ndarray:
    """The auxiliary images that trials and the final run may train on: all but ``holdout``."""
    keep = np.ones(n_aux, dtype=bool)
    keep[np.asarray(holdout, dtype=np.int64)] = False
    return np.flatnonzero(keep).astype(np.int64)


# ------------------------------------------------------------------------------------ study
def study_name(run: str, run_config: Mapping[str, Any]) -> str:
    """``<run>-<12 hex digits>``: a hash of everything that determines a trial's outcome.

    ``run_config`` is :func:`oodflow.steps.run_config` of the run; ``n_trials`` and ``storage`` are
    left out, and so are the run's own values of the searched parameters (every trial overrides
    them). Raising ``n_trials`` therefore resumes the same study, while changing the search space,
    the epochs, the holdout, the score or anything else the run depends on starts a new one (old
    studies stay in the storage, untouched).
    """
    cfg = copy.deepcopy(dict(run_config))
    hpo = cfg["run"].get("hpo") or {}
    cfg["run"]["hpo"] = {k: v for k, v in hpo.items() if k not in _BOOKKEEPING}
    for name in hpo.get("params", {}):  # every trial overrides the run's own value of these
        owner = cfg["run"] if name in RUN_PARAMS else cfg["run"].get("method_args", {})
        owner.pop(name, None)
    digest = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()
    return f"{run}-{digest[:12]}"


def storage_url(storage: str | None, default_db: str) -> str:
    """The Optuna storage URL: ``storage`` with ``$VARS`` expanded (so a password can stay in the
    environment), or an SQLite file at ``default_db``."""
    if storage:
        return os.path.expandvars(storage)
    path = Path(default_db).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def open_study(
    storage: str | optuna.storages.BaseStorage, name: str, sampler: optuna.samplers.BaseSampler | None = None
) -> optuna.Study:
    """Create the study ``name`` in ``storage`` (a URL or storage object), or load it if it exists."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own one line per trial is enough
    return optuna.create_study(
        storage=storage, study_name=name, direction="minimize", sampler=sampler, load_if_exists=True
    )


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Mark trials left ``RUNNING`` (by a killed job) as ``FAIL``; returns their numbers.

    One job drives one study, so any trial still running when that job starts is stale. (Several
    workers sharing one study, as Optuna's distributed mode does, is not how this rule works.)
    """
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        study.tell(t.number, state=TrialState.FAIL)
    return [t.number for t in stale]


def _finished(study: optuna.Study) -> tuple[int, int]:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    return complete, len(trials) - complete


Objective = Callable[[dict[str, Any]], tuple[float, dict[str, Any]]]


def optimise(
    url: str,
    name: str,
    space: Mapping[str, Mapping[str, Any]],
    n_trials: int,
    seed_parts: tuple[Any, ...],
    objective: Objective,
    log: Callable[[str], None] = print,
) -> optuna.Study:
    """Run trials of ``objective`` until the study ``name`` has ``n_trials`` complete trials.

    ``objective(params)`` returns ``(value to minimise, user attributes)`` or raises
    :class:`Infeasible`. Trial ``k`` (counting finished trials) is proposed by
    ``TPESampler(seed=derive_seed(*seed_parts, k) % 2**32)``. Any other exception marks the trial ``FAIL``
    and propagates; a kill leaves it ``RUNNING`` until the next start marks it ``FAIL``.
    """
    import optuna
    from optuna.trial import TrialState

    storage = optuna.storages.RDBStorage(url)
    study = open_study(storage, name)
    stale = fail_stale_trials(study)
    complete, pruned = _finished(study)
    if stale or complete or pruned:
        log(
            f"study {name}: resuming with {complete} complete, {pruned} pruned trials"
            + (f"; marked stale running trials {stale} as FAIL" if stale else "")
        )
    while complete < n_trials:
        if pruned > MAX_PRUNED_PER_TRIAL * n_trials:
            raise RuntimeError(
                f"study {name}: {pruned} proposals were infeasible (pruned); narrow hpo.params "
                "so that most of the search space can be trained"
            )
        sampler = optuna.samplers.TPESampler(seed=derive_seed(*seed_parts, complete + pruned) % 2**32)
        study = open_study(storage, name, sampler)
        trial, params = study.ask(), {}
        try:
            params = suggest(trial, space)
            value, attrs = objective(params)
        except Infeasible as err:
            trial.set_user_attr("infeasible", str(err))
            study.tell(trial, state=TrialState.PRUNED)
            pruned += 1
            log(f"trial {trial.number}: {_fmt(params)} pruned (infeasible: {err})")
            continue
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)
            raise
        for key in sorted(attrs):
            trial.set_user_attr(key, attrs[key])
        study.tell(trial, value)
        complete += 1
        best = best_trial(considered_trials(study, n_trials))
        log(
            f"trial {trial.number} ({complete}/{n_trials} complete): {_fmt(params)} -> {value:.6g} "
            f"({_fmt(attrs)}); best {best.value:.6g} (trial {best.number})"
        )
    return study


def _fmt(values: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(values.items())
    )


def considered_trials(study: optuna.Study, n_trials: int) -> list[optuna.trial.FrozenTrial]:
    """The study's trials up to (and including) its ``n_trials``-th complete one, by number, without
    its ``FAIL`` trials, renumbered ``0, 1, ...`` in order (copies; the storage is untouched).

    A ``FAIL`` trial is a killed job's (marked by :func:`fail_stale_trials`) or an objective's error
    (which stopped the job): an uninterrupted search has none, and the resumed search proposes the
    same parameters again, so leaving them out makes the outputs of a killed-and-resumed search equal
    an uninterrupted one's. A study resumed with a smaller ``n_trials`` than it already holds is
    reported as if it had stopped there, so the outputs equal those of a study run straight to
    ``n_trials``.
    """
    from optuna.trial import TrialState

    out, complete = [], 0
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if complete == n_trials:
            break
        if t.state == TrialState.FAIL:
            continue
        t = copy.deepcopy(t)
        t.number = len(out)
        out.append(t)
        complete += t.state == TrialState.COMPLETE
    return out


def best_trial(trials: list[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial:
    """The complete trial with the lowest value; ties go to the higher ``auroc`` user attribute,
    then to the earlier trial (FPR@95 on a small validation set ties easily, e.g. at 0)."""
    from optuna.trial import TrialState

    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise ValueError("the study has no complete trial")
    return min(complete, key=lambda t: (t.value, -t.user_attrs.get("auroc", 0.0), t.number))


# ---------------------------------------------------------------------------------- outputs
def best_summary(name: str, trials: list[optuna.trial.FrozenTrial], objective: str) -> dict[str, Any]:
    """The content of ``best.json``: the best trial's parameters, value, number and attributes."""
    from optuna.trial import TrialState

    best = best_trial(trials)
    return {
        "study": name,
        "objective": objective,
        "number": best.number,
        "value": best.value,
        "params": dict(sorted(best.params.items())),
        "user_attrs": dict(sorted(best.user_attrs.items())),
        "n_complete": sum(t.state == TrialState.COMPLETE for t in trials),
    }


def trials_csv(trials: list[optuna.trial.FrozenTrial]) -> str:
    """One row per trial: number, state, value, ``param_<name>``, ``attr_<name>`` columns (sorted).

    No datetimes, floats as ``repr`` (shortest round-trip form): equal studies give equal bytes.
    """
    params = sorted({k for t in trials for k in t.params})
    attrs = sorted({k for t in trials for k in t.user_attrs})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["number", "state", "value", *(f"param_{p}" for p in params), *(f"attr_{a}" for a in attrs)]
    )

    def cell(v: Any) -> str:
        return "" if v is None else repr(float(v)) if isinstance(v, float) else str(v)

    for t in sorted(trials, key=lambda t: t.number):
        writer.writerow(
            [
                t.number,
                t.state.name,
                cell(t.value),
                *(cell(t.params.get(p)) for p in params),
                *(cell(t.user_attrs.get(a)) for a in attrs),
            ]
        )
    return buf.getvalue()


def param_importances(trials: list[optuna.trial.FrozenTrial], seed: int) -> dict[str, float] | str:
    """fANOVA importances (normalised to sum 1) of the complete ``trials``, or the reason they are
    undefined (fewer than 2 complete trials, or all with the same value).

    ``FanovaImportanceEvaluator(seed=seed)`` fits a seeded random forest, so equal studies give
    equal importances.
    """
    import optuna
    from optuna.trial import TrialState

    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if len(complete) < 2:
        return f"{len(complete)} complete trial(s): importances need at least 2"
    if len({t.value for t in complete}) == 1:
        return f"all {len(complete)} complete trials have the same objective value ({complete[0].value:.4g})"
    view = optuna.create_study(direction="minimize")  # in memory: exactly the considered trials
    view.add_trials(complete)
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed % 2**32)
    try:
        found = optuna.importance.get_param_importances(view, evaluator=evaluator)
    except RuntimeError as err:  # e.g. zero variance in every tree
        return f"importances undefined ({err})"
    return {k: (0.0 if math.isnan(v) else float(v)) for k, v in sorted(found.items())}
