"""Hyper-parameter search (oodflow.hpo, steps.hpo, rule hpo): config, holdout, resumption, outputs."""

from __future__ import annotations

import copy
import inspect
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from oodflow import hpo, steps
from oodflow.config import ConfigError, validate
from oodflow.io import load_npz, read_json, write_json, write_text
from oodflow.methods import METHOD_ARGS, METHODS
from workflow_runner import snakemake

ROOT = Path(__file__).resolve().parents[1]
SPACE = {
    "lr": {"low": 1e-4, "high": 1e-2, "log": True},
    "m_in": {"low": -20.0, "high": -2.0},
    "m_out": {"low": -8.0, "high": 0.0},
}
SEED_PARTS = (0, "hpo", "ft")


def quadratic(params: dict) -> tuple[float, dict]:
    """A cheap stand-in objective with its minimum at lr = 10^-2.5, m_in = -10, m_out = -4."""
    if params["m_in"] >= params["m_out"]:
        raise hpo.Infeasible("m_in must be below m_out")
    value = (
        (math.log10(params["lr"]) + 2.5) ** 2
        + (params["m_in"] + 10) ** 2 / 100
        + (params["m_out"] + 4) ** 2 / 50
    )
    return value, {"auroc": 1.0 / (1.0 + value), "val_acc": 0.5}


def url(tmp_path: Path, name: str = "study.db") -> str:
    return hpo.storage_url(None, str(tmp_path / name))


def complete(study) -> list[tuple[dict, float]]:
    return [(t.params, t.value) for t in hpo.considered_trials(study, 10**6) if t.state.name == "COMPLETE"]


def ft_config(test_config: dict, **hpo_block) -> dict:
    raw = copy.deepcopy(test_config)
    raw["runs"]["ft"] = {
        **raw["runs"]["tiny"],
        "method": "energy_ft",
        "init_from": "tiny",
        "epochs": 1,
        "method_args": {"aux_batch_size": 16},
        "hpo": {"n_trials": 2, "holdout": 10, "params": copy.deepcopy(SPACE), **hpo_block},
    }
    return raw


# ------------------------------------------------------------------------------------- config
def test_hpo_block_gets_defaults(test_config):
    cfg = validate(ft_config(test_config))
    block = cfg["runs"]["ft"]["hpo"]
    assert block["score"] == "energy" and block["storage"] is None and block["epochs"] is None
    assert block["params"]["m_in"] == {"low": -20.0, "high": -2.0, "log": False, "int": False}
    assert "hpo" not in cfg["runs"]["tiny"], "runs without a search must not grow an hpo key"


@pytest.mark.parametrize(
    "edit, key, words",
    [
        (
            lambda h: h["params"].update(temperature={"low": 1.0, "high": 2.0}),
            "runs.ft.hpo.params.temperature",
            ["unknown parameter 'temperature'", "lr, weight_decay, lam, m_in, m_out, aux_batch_size"],
        ),
        (lambda h: h["params"]["m_in"].update(low=-2.0), "runs.ft.hpo.params.m_in", ["must be below high"]),
        (
            lambda h: h["params"]["lr"].update(low=0.0),
            "runs.ft.hpo.params.lr",
            ["log-scale range needs low > 0"],
        ),
        (
            lambda h: h["params"].update(aux_batch_size={"low": 8, "high": 16.5, "int": True}),
            "runs.ft.hpo.params.aux_batch_size",
            ["integer low and high"],
        ),
        (
            lambda h: h["params"].update(m_in={"low": 0.0, "high": 5.0}),
            "runs.ft.hpo.params",
            ["needs m_in < m_out"],
        ),
        (lambda h: h.update(score="odin"), "runs.ft.hpo.score", ["not a post-hoc score", "energy"]),
        (lambda h: h.update(score="nope"), "runs.ft.hpo.score", ["not a post-hoc score"]),
        (lambda h: h.update(score_args={"k": 3}), "runs.ft.hpo.score_args.k", ["has no parameter 'k'"]),
        (lambda h: h.update(holdout=40), "runs.ft.hpo.holdout", ["leave none of the 40-image aux pool"]),
        (lambda h: h["params"]["lr"].pop("high"), "runs.ft.hpo.params.lr", ["'high' is a required property"]),
        (lambda h: h.update(n_trials=0), "runs.ft.hpo.n_trials", ["minimum"]),
    ],
)
def test_bad_hpo_blocks_name_the_key(test_config, edit, key, words):
    raw = ft_config(test_config)
    edit(raw["runs"]["ft"]["hpo"])
    with pytest.raises(ConfigError) as err:
        validate(raw)
    assert f"config error at {key}" in str(err.value)
    for word in words:
        assert word in str(err.value)


def test_method_argument_table_matches_the_classes():
    assert set(METHOD_ARGS) == set(METHODS.names())
    for name in METHODS.names():
        assert METHOD_ARGS[name] == tuple(inspect.signature(METHODS.get(name)).parameters), name


def test_merge_sends_lr_to_the_run_and_the_rest_to_the_method():
    spec = {"lr": 0.1, "weight_decay": 0.0, "method_args": {"m_in": -25.0, "aux_batch_size": 8}}
    merged = hpo.merge_params(spec, {"lr": 0.003, "weight_decay": 1e-4, "m_in": -12.0, "m_out": -3.0})
    assert merged["lr"] == 0.003 and merged["weight_decay"] == 1e-4
    assert merged["method_args"] == {"m_in": -12.0, "m_out": -3.0, "aux_batch_size": 8}
    assert spec["lr"] == 0.1 and spec["method_args"] == {"m_in": -25.0, "aux_batch_size": 8}


def test_rerun_config_carries_the_search_but_not_its_storage(test_config):
    cfg = validate(ft_config(test_config, storage="postgresql://me:${PW}@db/hpo"))
    rc = steps.run_config(cfg, "ft")
    assert rc["run"]["hpo"]["params"] == cfg["runs"]["ft"]["hpo"]["params"]
    assert "storage" not in rc["run"]["hpo"] and rc["benchmark"]["aux_size"] == 40
    assert "hpo" not in steps.run_config(cfg, "tiny")["run"]

    def name(**changes) -> str:
        c = copy.deepcopy(cfg)
        for key, value in changes.items():
            target = c["runs"]["ft"] if key in ("lr", "epochs") else c["runs"]["ft"]["hpo"]
            target[key] = value
        return hpo.study_name("ft", steps.run_config(c, "ft"))

    assert name() == name(n_trials=50) == name(storage=None) == name(lr=0.5)  # lr is searched anyway
    assert len({name(), name(holdout=5), name(epochs=2), name(score="msp")}) == 4


# ------------------------------------------------------------------------------------ holdout
def test_holdout_is_seeded_sorted_and_disjoint_from_training():
    held = hpo.holdout_indices(100, 30, seed=7)
    assert np.array_equal(held, hpo.holdout_indices(100, 30, seed=7))
    assert not np.array_equal(held, hpo.holdout_indices(100, 30, seed=8))
    assert np.all(np.diff(held) > 0) and held.dtype == np.int64
    train = hpo.training_indices(100, held)
    assert len(train) == 70 and not set(train) & set(held)
    assert np.array_equal(np.sort(np.concatenate([held, train])), np.arange(100))
    for size in (0, 100):
        with pytest.raises(ValueError, match="hpo.holdout"):
            hpo.holdout_indices(100, size, seed=7)


# --------------------------------------------------------------------------------- resumption
def test_raising_n_trials_resumes_and_equals_a_straight_run(tmp_path):
    straight = hpo.optimise(url(tmp_path, "a.db"), "s", SPACE, 4, SEED_PARTS, quadratic, log=lambda m: None)
    lines: list[str] = []
    hpo.optimise(url(tmp_path, "b.db"), "s", SPACE, 2, SEED_PARTS, quadratic, log=lines.append)
    resumed = hpo.optimise(url(tmp_path, "b.db"), "s", SPACE, 4, SEED_PARTS, quadratic, log=lines.append)
    assert "resuming with 2 complete, 0 pruned trials" in lines[2]
    assert len(resumed.trials) == 4 and complete(resumed) == complete(straight)
    assert hpo.best_trial(resumed.trials).params == hpo.best_trial(straight.trials).params


KILLER = textwrap.dedent(
    """
    import os, sys
    sys.path[:0] = [{src!r}, {tests!r}]
    from oodflow import hpo
    from test_hpo import SEED_PARTS, SPACE, quadratic
    calls = []

    def objective(params):
        calls.append(params)
        if len(calls) == {kill_at}:
            os._exit(9)  # like SIGKILL: no exception handling, the trial stays RUNNING
        return quadratic(params)

    hpo.optimise({url!r}, "s", SPACE, 4, SEED_PARTS, objective)
    """
)


def test_killed_study_resumes_with_the_same_proposals(tmp_path):
    straight = hpo.optimise(url(tmp_path, "a.db"), "s", SPACE, 4, SEED_PARTS, quadratic, log=lambda m: None)
    killed_url = url(tmp_path, "b.db")
    script = KILLER.format(src=str(ROOT / "src"), tests=str(ROOT / "tests"), kill_at=3, url=killed_url)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    before = hpo.open_study(killed_url, "s").trials
    assert [t.state.name for t in before] == ["COMPLETE", "COMPLETE", "RUNNING"]

    lines: list[str] = []
    resumed = hpo.optimise(killed_url, "s", SPACE, 4, SEED_PARTS, quadratic, log=lines.append)
    assert "marked stale running trials [2] as FAIL" in lines[0]
    states = [t.state.name for t in resumed.trials]
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    # the killed trial had proposed what the straight run's third trial tried; it is proposed again
    assert resumed.trials[2].params == straight.trials[2].params == resumed.trials[3].params
    assert complete(resumed) == complete(straight)
    assert hpo.best_trial(resumed.trials).params == hpo.best_trial(straight.trials).params


def test_objective_error_fails_the_trial_and_propagates(tmp_path):
    def broken(params):
        raise ZeroDivisionError("bug in the objective")

    with pytest.raises(ZeroDivisionError):
        hpo.optimise(url(tmp_path), "s", SPACE, 2, SEED_PARTS, broken)
    trials = hpo.open_study(url(tmp_path), "s").trials
    assert [t.state.name for t in trials] == ["FAIL"]
    study = hpo.optimise(url(tmp_path), "s", SPACE, 2, SEED_PARTS, quadratic, log=lambda m: None)
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE", "COMPLETE"]


def test_infeasible_margins_are_pruned_and_not_counted(tmp_path):
    space = {**SPACE, "m_in": {"low": -10.0, "high": 0.0}, "m_out": {"low": -10.0, "high": 0.0}}
    study = hpo.optimise(url(tmp_path), "s", space, 6, SEED_PARTS, quadratic, log=lambda m: None)
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 6 and states.count("PRUNED") >= 1
    for t in study.trials:
        feasible = t.params["m_in"] < t.params["m_out"]
        assert feasible == (t.state.name == "COMPLETE")
        assert feasible or t.user_attrs["infeasible"] == "m_in must be below m_out"


def test_a_hopeless_search_space_stops_with_a_clear_error(tmp_path):
    def never(params):
        raise hpo.Infeasible("always")

    with pytest.raises(RuntimeError, match="narrow hpo.params"):
        hpo.optimise(url(tmp_path), "s", SPACE, 1, SEED_PARTS, never, log=lambda m: None)
    assert len(hpo.open_study(url(tmp_path), "s").trials) == hpo.MAX_PRUNED_PER_TRIAL + 1


def test_lowering_n_trials_reports_the_first_trials_only(tmp_path):
    study = hpo.optimise(url(tmp_path), "s", SPACE, 4, SEED_PARTS, quadratic, log=lambda m: None)
    study = hpo.optimise(url(tmp_path), "s", SPACE, 2, SEED_PARTS, quadratic, log=lambda m: None)
    first = hpo.considered_trials(study, 2)
    assert [t.number for t in first] == [0, 1]
    assert hpo.best_summary("s", first, "x")["value"] == min(t.value for t in study.trials[:2])


# ------------------------------------------------------------------------------------ outputs
def test_best_trial_breaks_ties_by_auroc_then_number():
    import optuna

    def frozen(number, value, auroc):
        t = optuna.trial.create_trial(params={}, distributions={}, value=value, user_attrs={"auroc": auroc})
        t.number = number
        return t

    trials = [frozen(0, 0.5, 0.9), frozen(1, 0.0, 0.8), frozen(2, 0.0, 0.95), frozen(3, 0.0, 0.95)]
    assert hpo.best_trial(trials).number == 2


def write_outputs(study, out: Path) -> None:
    trials = hpo.considered_trials(study, 4)
    write_json(out / "best.json", hpo.best_summary("s", trials, "quadratic"))
    write_text(out / "trials.csv", hpo.trials_csv(trials))
    from oodflow.report import hpo_figures

    hpo_figures.history(trials, title="s", out=str(out / "history.png"), dpi=50)
    hpo_figures.importance(
        hpo.param_importances(trials, 3), title="s", out=str(out / "importance.png"), dpi=50
    )


def test_outputs_are_byte_stable_and_exact(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        study = hpo.optimise(url(tmp_path, f"{name}.db"), "s", SPACE, 4, SEED_PARTS, quadratic, log=print)
        write_outputs(study, tmp_path / name)
    for file in ("best.json", "trials.csv", "history.png", "importance.png"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
    best = read_json(tmp_path / "a" / "best.json")
    rows = (tmp_path / "a" / "trials.csv").read_text().splitlines()
    assert rows[0] == "number,state,value,param_lr,param_m_in,param_m_out,attr_auroc,attr_val_acc"
    values = [float(r.split(",")[2]) for r in rows[1:]]
    assert best["value"] == min(values) and best["number"] == int(np.argmin(values))
    assert quadratic(best["params"])[0] == best["value"]  # repr floats round-trip exactly
    assert list(best) == sorted(best) and best["n_complete"] == 4


@pytest.mark.parametrize("kills", [[1], [3], [2, 2]])
def test_killed_and_resumed_search_writes_the_same_bytes_as_an_uninterrupted_one(tmp_path, kills):
    """Issue 23 item 6: best.json, trials.csv and both figures of a search killed (once or twice)
    and resumed equal an uninterrupted search's, although the storage holds the killed trials."""
    straight = hpo.optimise(url(tmp_path, "a.db"), "s", SPACE, 4, SEED_PARTS, quadratic, log=lambda m: None)
    killed_url = url(tmp_path, "b.db")
    for kill_at in kills:
        script = KILLER.format(
            src=str(ROOT / "src"), tests=str(ROOT / "tests"), kill_at=kill_at, url=killed_url
        )
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 9, proc.stderr
    resumed = hpo.optimise(killed_url, "s", SPACE, 4, SEED_PARTS, quadratic, log=lambda m: None)
    assert [t.state.name for t in resumed.trials].count("FAIL") == len(kills)
    for name, study in (("straight", straight), ("resumed", resumed)):
        (tmp_path / name).mkdir()
        write_outputs(study, tmp_path / name)
    for file in ("best.json", "trials.csv", "history.png", "importance.png"):
        assert (tmp_path / "straight" / file).read_bytes() == (tmp_path / "resumed" / file).read_bytes(), file
    rows = (tmp_path / "resumed" / "trials.csv").read_text().splitlines()[1:]
    assert [r.split(",")[:2] for r in rows] == [[str(i), "COMPLETE"] for i in range(4)]


def test_importances_need_two_distinct_values_and_find_the_active_parameter(tmp_path):
    def only_lr(params):
        return (math.log10(params["lr"]) + 2.5) ** 2, {}

    study = hpo.optimise(url(tmp_path), "s", SPACE, 12, SEED_PARTS, only_lr, log=lambda m: None)
    trials = hpo.considered_trials(study, 12)
    found = hpo.param_importances(trials, seed=1)
    assert found == hpo.param_importances(trials, seed=1)
    assert math.isclose(sum(found.values()), 1.0) and max(found, key=found.get) == "lr"
    assert "at least 2" in hpo.param_importances(trials[:1], seed=1)
    flat = hpo.optimise(url(tmp_path, "f.db"), "s", SPACE, 3, SEED_PARTS, lambda p: (0.25, {}), log=print)
    assert "same objective value" in hpo.param_importances(flat.trials, seed=1)
    from oodflow.report import hpo_figures

    hpo_figures.importance("1 complete trial(s)", title="t", out=str(tmp_path / "none.png"), dpi=50)
    assert (tmp_path / "none.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_final_training_refuses_a_missing_or_stale_best_json(test_config, tmp_path):
    cfg = validate(ft_config(test_config))
    with pytest.raises(ValueError, match="pass the best.json"):
        steps._with_best_params(cfg, "ft", None)
    stale = tmp_path / "best.json"
    write_json(stale, {"study": "ft-000000000000", "number": 0, "params": {"lr": 0.1}})
    with pytest.raises(ValueError, match="its config changed"):
        steps._with_best_params(cfg, "ft", str(stale))
    assert steps._with_best_params(cfg, "tiny", None) is cfg


# ---------------------------------------------------------------------------------------- e2e
OUT = Path("results/mnist5k")


@pytest.mark.e2e
def test_hpo_rule_feeds_the_final_run_and_resumes(test_config, tmp_path):
    from oodflow import checkpoint

    config_path = tmp_path / "hpo.yaml"
    config_path.write_text(yaml.safe_dump(ft_config(test_config)))
    targets = [str(OUT / "runs/ft/model.pt"), str(OUT / "figures/hpo/ft_importance.png")]
    work = tmp_path / "work"
    snakemake(work, *targets, "--configfile", str(config_path))

    hpo_dir = work / OUT / "hpo" / "ft"
    best = read_json(hpo_dir / "best.json")
    payload = checkpoint.load(work / OUT / "runs/ft/model.pt")
    run = payload["config"]["run"]
    assert run["lr"] == best["params"]["lr"]
    assert run["method_args"] == {
        "aux_batch_size": 16,
        "m_in": best["params"]["m_in"],
        "m_out": best["params"]["m_out"],
    }
    assert run["hpo"]["n_trials"] == 2 and "storage" not in run["hpo"]
    held = load_npz(hpo_dir / "holdout.npz")
    assert held["n_aux"].tolist() == [40] and np.array_equal(held["indices"], hpo.holdout_indices(40, 10, 0))
    rows = (hpo_dir / "trials.csv").read_text().splitlines()
    assert [r.split(",")[1] for r in rows[1:]] == ["COMPLETE", "COMPLETE"]
    assert (hpo_dir / "study.db").exists() and not (hpo_dir / "trial-checkpoint.pt").exists()
    for fig in ("history", "importance"):
        assert (work / OUT / f"figures/hpo/ft_{fig}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = (work / "logs/mnist5k/hpo/ft.log").read_text()
    assert "trial 1 (2/2 complete)" in log

    # one more trial: the search resumes its study (two trials kept) and the final run retrains
    more = ft_config(test_config, n_trials=3)
    config_path.write_text(yaml.safe_dump(more))
    snakemake(work, *targets, "--configfile", str(config_path))
    log = (work / "logs/mnist5k/hpo/ft.log").read_text()
    assert "resuming with 2 complete, 0 pruned trials" in log and "trial 2 (3/3 complete)" in log
    rows3 = (hpo_dir / "trials.csv").read_text().splitlines()
    assert rows3[1:3] == rows[1:3] and len(rows3) == 4
    assert checkpoint.load(work / OUT / "runs/ft/model.pt")["config"]["run"]["hpo"]["n_trials"] == 3
    proc = snakemake(work, *targets, "--configfile", str(config_path))
    assert "Nothing to be done" in proc.stdout + proc.stderr
