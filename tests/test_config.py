"""Config validation: schema types and ranges, defaults, registry names; errors name the key."""

from __future__ import annotations

import copy

import pytest

from oodflow import config as cfg


def test_default_and_test_configs_are_valid(default_config, test_config):
    for raw in (default_config, test_config):
        out = cfg.validate(raw)
        assert out["benchmark"]["name"] == "mnist5k"
        cfg.check_parameters(out)


def test_defaults_are_filled_in(test_config):
    out = cfg.validate(test_config)
    run = out["runs"]["tiny"]
    assert run["optimizer"] == "adam" and run["scheduler"] == "cosine" and run["weight_decay"] == 0.0
    assert out["benchmark"]["image_format"] == "gray28"
    assert out["plots"]["bins"] == 50
    assert "optimizer" not in test_config["runs"]["tiny"], "validate must not mutate its input"


@pytest.mark.parametrize(
    "mutate, key, words",
    [
        (lambda c: c["scores"].update(foo={}), "scores.foo", ["unknown score 'foo'", "msp", "knn"]),
        (lambda c: c["runs"]["tiny"].update(epochs=-1), "runs.tiny.epochs", ["minimum"]),
        (lambda c: c["runs"]["tiny"].update(epochs="ten"), "runs.tiny.epochs", ["not of type 'integer'"]),
        (lambda c: c["runs"]["tiny"].update(lr=0), "runs.tiny.lr", []),
        (
            lambda c: c["runs"]["tiny"].update(model="resnet9000"),
            "runs.tiny.model",
            ["unknown model", "small_cnn"],
        ),
        (lambda c: c["runs"]["tiny"].update(method="magic"), "runs.tiny.method", ["unknown method", "ce"]),
        (lambda c: c["benchmark"].update(ood_sets=["textures", "nope"]), "benchmark.ood_sets.1", ["glyphs"]),
        (lambda c: c["benchmark"].update(name="cifar5"), "benchmark.name", ["mnist5k"]),
        (lambda c: c["benchmark"].update(image_format="rgb64"), "benchmark.image_format", ["gray28"]),
        (lambda c: c.update(typo_key=1), "typo_key", ["unknown key 'typo_key'", "valid keys: ", "runs"]),
        (
            lambda c: c["runs"]["tiny"].update(optimiser="sgd"),
            "runs.tiny.optimiser",
            ["unknown key 'optimiser'", "valid keys: seed, model, ", "optimizer"],
        ),
    ],
)
def test_bad_config_names_the_key(test_config, mutate, key, words):
    bad = copy.deepcopy(test_config)
    mutate(bad)
    with pytest.raises(cfg.ConfigError) as info:
        cfg.validate(bad)
    msg = str(info.value)
    assert f"at {key}:" in msg
    for word in words:
        assert word in msg


def test_unknown_parameters_are_reported(test_config):
    bad = copy.deepcopy(test_config)
    bad["scores"]["knn"] = {"kk": 3}
    with pytest.raises(cfg.ConfigError, match=r"scores\.knn\.kk: score 'knn' has no parameter 'kk'"):
        cfg.validate(bad)
    bad["scores"] = {"vim": {}}
    with pytest.raises(cfg.ConfigError, match=r"at scores\.vim: score 'vim' needs the parameter 'dim'"):
        cfg.validate(bad)
    bad = cfg.validate(test_config)
    bad["runs"]["tiny"]["model_args"] = {"depth": 3}
    with pytest.raises(cfg.ConfigError, match=r"runs\.tiny\.model_args\.depth"):
        cfg.check_parameters(bad)


def test_load_rejects_non_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(cfg.ConfigError, match="mapping"):
        cfg.load(path)


@pytest.mark.parametrize(
    "runs, words",
    [
        (
            {"ft": {"model": "small_cnn", "method": "ce", "init_from": "nope"}},
            "runs.ft.init_from: unknown run 'nope'",
        ),
        (
            {"ft": {"model": "small_cnn", "method": "ce", "init_from": "ft"}},
            "runs.ft.init_from: cycle ft -> ft",
        ),
        ({"ft": {"model": "resnet18", "method": "ce", "init_from": "tiny"}}, "trains another model"),
    ],
)
def test_init_from_must_name_another_run_of_the_same_model(test_config, runs, words):
    bad = copy.deepcopy(test_config)
    bad["runs"].update(runs)
    with pytest.raises(cfg.ConfigError, match=words.replace(".", r"\.")):
        cfg.validate(bad)


def test_paper_configs_write_to_distinct_results_folders():
    """Two paper configs of one benchmark (e.g. cifar10 and aoe_cifar10) must not share results/<name>:
    their runs of the same name would overwrite each other."""
    import yaml

    folders: dict[str, str] = {}
    for path in sorted((cfg.SCHEMA_PATH.parents[0] / "papers").glob("*.yaml")):
        out = cfg.validate(yaml.safe_load(path.read_text()))
        if not out["runs"]:
            continue
        folder = out["name"] or out["benchmark"]["name"]
        assert folder not in folders, f"{path.name} and {folders[folder]} both write results/{folder}"
        folders[folder] = path.name
    assert {"aoe_cifar10", "cifar10"} <= set(folders)


def test_config_cli_names_the_file_and_line(tmp_path, capsys):
    good, bad, dup = tmp_path / "good.yaml", tmp_path / "bad.yaml", tmp_path / "dup.yaml"
    good.write_text(cfg.SCHEMA_PATH.with_name("test.yaml").read_text())
    bad.write_text("seed: 0\nruns:\n\ttiny: {}\n")
    dup.write_text(good.read_text() + "seed: 3\n")
    assert cfg.main([str(good)]) == 0
    assert f"{good}: valid" in capsys.readouterr().out
    assert cfg.main([str(good), str(bad), str(dup)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3:1: not valid YAML" in err and "holds a tab" in err
    assert f"{dup}:{len(good.read_text().splitlines()) + 1}:1: not valid YAML: found the key 'seed'" in err
    with pytest.raises(cfg.ConfigError, match=f"^{dup}:"):
        cfg.load(dup)
