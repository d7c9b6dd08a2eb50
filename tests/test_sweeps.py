"""Sweeps (config ``sweeps``) expanded into runs; the ``adversarial`` section; the benchmark's
normalisation filled into ``aoe`` runs."""

from __future__ import annotations

import copy

import pytest

from oodflow import steps
from oodflow.config import ConfigError, load_schema, validate
from oodflow.sweeps import set_param, sweep_runs, value_label

TEMPLATE = {
    "model": "small_cnn",
    "model_args": {"width": 0.25},
    "method": "aoe",
    "init_from": "tiny",
    "epochs": 1,
    "method_args": {"attack": "eba"},
}


def with_sweep(test_config, param="method_args.eps", values=(0.0, 0.1, 1.0), template=TEMPLATE, name="s"):
    raw = copy.deepcopy(test_config)
    raw["sweeps"] = {name: {"template": copy.deepcopy(template), "param": param, "values": list(values)}}
    return raw


@pytest.mark.parametrize(
    "value, label",
    [(0.0, "0p0"), (0.1, "0p1"), (1.0, "1p0"), (-2, "m2"), (1e-05, "1em05"), (16, "16"), (True, "true"),
     ("eba", "eba"), ("a/b c", "a_b_c")],
)  # fmt: skip
def test_value_labels_are_valid_run_name_parts(value, label):
    assert value_label(value) == label


def test_set_param_copies_and_sets_nested_or_top_level_keys():
    spec = {"method_args": {"attack": "eba"}, "lr": 0.1}
    assert set_param(spec, "method_args.eps", 0.5)["method_args"] == {"attack": "eba", "eps": 0.5}
    assert set_param(spec, "lr", 0.2)["lr"] == 0.2
    assert set_param({}, "model_args.width", 0.5) == {"model_args": {"width": 0.5}}
    assert spec == {"method_args": {"attack": "eba"}, "lr": 0.1}, "the template must not change"


def test_sweep_expands_into_ordinary_runs(test_config):
    cfg = validate(with_sweep(test_config))
    assert list(cfg["runs"]) == [*test_config["runs"], "s-0p0", "s-0p1", "s-1p0"]
    for run, eps in sweep_runs("s", cfg["sweeps"]["s"]).items():
        spec = cfg["runs"][run]
        assert spec["method_args"] == {"attack": "eba", "eps": eps}
        assert spec["init_from"] == "tiny" and spec["optimizer"] == "adam"  # schema defaults filled in
    assert cfg["runs"]["tiny"] == validate(test_config)["runs"]["tiny"]
    # validating the validated config again (a job's re-parse) changes nothing
    assert validate(cfg) == cfg


def test_sweep_over_a_run_key_and_init_from_checks(test_config):
    tpl = {k: v for k, v in TEMPLATE.items() if k != "method_args"} | {"method": "ce"}
    cfg = validate(with_sweep(test_config, "lr", [0.01, 0.001], tpl))
    assert [cfg["runs"][r]["lr"] for r in ("s-0p01", "s-0p001")] == [0.01, 0.001]
    bad = with_sweep(test_config, "lr", [0.01], {**tpl, "init_from": "nope"})
    with pytest.raises(ConfigError, match=r"runs\.s-0p01\.init_from: unknown run 'nope'"):
        validate(bad)


def test_sweep_over_gan_outlier_sigma_keeps_the_other_outlier_keys(test_config):
    tpl = {**TEMPLATE, "outliers": {"source": "gan", "sigma": 2.0, "count": 10}}
    cfg = validate(with_sweep(test_config, "outliers.sigma", [0.5, 3.0], tpl))
    assert cfg["runs"]["s-3p0"]["outliers"] == {"source": "gan", "sigma": 3.0, "count": 10}
    with pytest.raises(ConfigError, match=r"runs\.s-1\.outliers"):
        validate(with_sweep(test_config, "outliers.colour", [1], tpl))


@pytest.mark.parametrize(
    "param, words",
    [
        ("method_args.nope", ["sweeps.s.param", "method 'aoe' has no argument 'nope'", "eps"]),
        ("colour", ["sweeps.s.param", "unknown parameter path 'colour'", "method_args.<name>"]),
        ("lr.x", ["sweeps.s.param", "unknown parameter path 'lr.x'"]),
        ("hpo", ["sweeps.s.param", "hpo block cannot be swept"]),
        ("method_args.a.b", ["sweeps.s.param", "does not match"]),
    ],
)
def test_unknown_param_paths_are_errors(test_config, param, words):
    with pytest.raises(ConfigError) as err:
        validate(with_sweep(test_config, param))
    for word in words:
        assert word in str(err.value)


def test_duplicate_run_names_are_errors(test_config):
    with pytest.raises(ConfigError, match=r"sweeps\.s\.values\.1: 0\.1 names the run 's-0p1'"):
        validate(with_sweep(test_config, values=[0.1, 0.1]))
    taken = with_sweep(test_config, values=[0.5])
    taken["runs"]["s-0p5"] = copy.deepcopy(test_config["runs"]["tiny"])
    with pytest.raises(ConfigError, match="run name 's-0p5' is already taken"):
        validate(taken)


def test_swept_values_and_templates_are_schema_checked(test_config):
    with pytest.raises(ConfigError, match=r"sweeps\.s\.template\.epochs"):
        validate(with_sweep(test_config, template={**TEMPLATE, "epochs": 0}))
    with pytest.raises(ConfigError, match=r"runs\.s-m1\.lr"):
        validate(with_sweep(test_config, "lr", [-1]))
    with pytest.raises(ConfigError, match=r"sweeps\.s\.values"):
        validate(with_sweep(test_config, values=[]))


def test_a_config_of_sweeps_only_is_valid_but_not_an_empty_one(test_config):
    raw = with_sweep(test_config, template={**TEMPLATE, "init_from": None})
    del raw["runs"]
    assert list(validate(raw)["runs"]) == ["s-0p0", "s-0p1", "s-1p0"]
    del raw["sweeps"]
    with pytest.raises(ConfigError, match="config error at runs: nothing to do"):
        validate(raw)


def test_runs_need_a_score_and_the_spine_is_optional(test_config):
    """Runs without scores are an error; a config without runs plans no single-label job."""
    with pytest.raises(ConfigError, match="config error at scores: the runs need at least one score"):
        validate({**test_config, "scores": {}})
    out = validate({"osr": {"datasets": ["mnist5k"]}})  # a section besides the runs
    assert out["runs"] == {} and out["scores"] == {} and out["benchmark"]["name"] == "mnist5k"
    schema = load_schema()  # an empty section (a stand-in without defaults) gives no work
    schema["properties"] = {**schema["properties"], "osr": {"type": "object"}}
    with pytest.raises(ConfigError, match="nothing to do"):
        validate({"osr": {}}, schema)


def test_adversarial_section_defaults_and_checks(test_config):
    assert "adversarial" not in validate(test_config)
    adv = validate({**test_config, "adversarial": {}})["adversarial"]
    assert adv["eps"][0] == 0.0 and len(adv["eps"]) == 11 and adv["scores"] == ["msp", "energy"]
    flags = (adv["target"], adv["accumulate"], adv["units"], adv["clip"], adv["runs"])
    assert flags == (1, False, "pixel", True, None)
    with pytest.raises(ConfigError, match=r"adversarial\.scores\.0"):
        validate({**test_config, "adversarial": {"scores": ["knn"]}})
    with pytest.raises(ConfigError, match=r"adversarial\.eps\.0"):
        validate({**test_config, "adversarial": {"eps": [-0.1]}})
    with pytest.raises(ConfigError, match=r"adversarial\.runs\.0: unknown run 'x'"):
        validate({**test_config, "adversarial": {"runs": ["x"]}})


def test_aoe_runs_get_the_benchmark_normalisation_in_their_run_config(test_config):
    raw = with_sweep(test_config, values=[0.5])
    raw["runs"]["explicit"] = {**TEMPLATE, "method_args": {"attack": "eba", "mean": None, "std": None}}
    cfg = validate(raw)
    rc = steps.run_config(cfg, "s-0p5")
    assert rc["run"]["method_args"] == {"attack": "eba", "eps": 0.5, "mean": [0.1307], "std": [0.3081]}
    assert "mean" not in cfg["runs"]["s-0p5"]["method_args"], "the validated config is not changed"
    # the fill-in is part of what triggers a rerun; an explicit null opts out; other runs are unchanged
    assert steps.run_config(cfg, "explicit")["run"]["method_args"]["mean"] is None
    assert steps.run_config(cfg, "tiny")["run"] == cfg["runs"]["tiny"]
    rgb = validate({**raw, "benchmark": {**raw["benchmark"], "image_format": "rgb32"}})
    assert steps.run_config(rgb, "s-0p5")["run"]["method_args"]["std"] == [0.3081] * 3
    # the aoe method accepts the filled-in arguments
    from oodflow.methods import build_method

    method = build_method("aoe", **rc["run"]["method_args"])
    assert method.mean == (0.1307,) and method.std == (0.3081,)
