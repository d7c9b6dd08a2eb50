"""Seeds: runs repeated per seed at validation time (names, parents, comparisons, params)."""

from __future__ import annotations

import copy
import re

import pytest

from oodflow import steps
from oodflow.config import ConfigError, validate
from oodflow.seeds import base_run, run_seed
from workflow_runner import snakemake


@pytest.fixture
def seeded(test_config):
    cfg = copy.deepcopy(test_config)
    cfg["runs"] = {"tiny": cfg["runs"]["tiny"]}  # the test config's other runs are not needed here
    cfg["runs"]["ft"] = {**cfg["runs"]["tiny"], "init_from": "tiny", "epochs": 1}
    cfg["report"] = {"comparisons": [{"name": "c", "baseline": "tiny", "candidate": "ft", "scores": ["msp"]}]}
    cfg["adversarial"] = {"eps": [0.0, 0.1], "runs": ["ft"]}
    return {**cfg, "seeds": [3, 7]}


def test_each_run_is_repeated_per_seed_and_follows_its_parents_seed(seeded):
    out = validate(seeded)
    assert list(out["runs"]) == ["tiny-s3", "tiny-s7", "ft-s3", "ft-s7"]
    assert [out["runs"][r]["seed"] for r in out["runs"]] == [3, 7, 3, 7]
    assert out["runs"]["ft-s7"]["init_from"] == "tiny-s7"
    assert out["adversarial"]["runs"] == ["ft-s3", "ft-s7"]
    comps = [(c["name"], c["baseline"], c["candidate"]) for c in out["report"]["comparisons"]]
    assert comps == [("c-s3", "tiny-s3", "ft-s3"), ("c-s7", "tiny-s7", "ft-s7")]
    assert validate(out) == out, "validating a validated config changes nothing"
    assert [base_run(r, s) for r, s in out["runs"].items()] == ["tiny", "tiny", "ft", "ft"]
    assert base_run("x-s1", {"seed": None}) == "x-s1"  # a name that only looks seeded


def test_seed_changes_training_not_data(seeded, test_config):
    out = validate(seeded)
    a, b = steps.run_config(out, "tiny-s3"), steps.run_config(out, "tiny-s7")
    assert (a["seed"], b["seed"]) == (3, 7) and run_seed(out, "tiny-s3") == 3
    assert a["benchmark"] == b["benchmark"] and a["benchmark"]["seed"] == test_config["seed"]
    assert steps.data_config(out, "id") == steps.data_config(validate(test_config), "id")
    # runs without seeds keep exactly the params they had (no retraining after an upgrade)
    plain = steps.run_config(validate(test_config), "tiny")
    assert plain["seed"] == test_config["seed"] and "seed" not in plain["benchmark"]
    assert "seed" not in plain["run"]


def test_a_seeded_name_that_is_taken_is_an_error(seeded):
    seeded["runs"]["tiny-s3"] = copy.deepcopy(seeded["runs"]["tiny"])
    with pytest.raises(ConfigError, match="config error at seeds: run 'tiny' with seed 3 would be called"):
        validate(seeded)


def test_the_dag_trains_one_job_per_run_and_seed(tmp_path, seeded):
    import yaml

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(seeded))
    plan = snakemake(tmp_path, "--configfile", str(cfg), "--dry-run", cores=1).stdout
    trained = sorted(re.findall(r"rule train:.*?wildcards: run=([\w-]+)", plan, flags=re.S))
    assert trained == ["ft-s3", "ft-s7", "tiny-s3", "tiny-s7"]
