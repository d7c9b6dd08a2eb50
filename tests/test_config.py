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


def test_static_signatures_match_the_imported_ones():
    """oodflow.signatures reads what inspect.signature reads, for every model and method."""
    import inspect

    from oodflow.methods import METHODS
    from oodflow.models import MODELS
    from oodflow.signatures import parameters

    for registry in (METHODS, MODELS):
        for name in registry.names():
            static = parameters(registry._entries[name])
            real = inspect.signature(registry.get(name)).parameters.values()
            assert static is not None, name
            assert [(p.name, p.kind, p.default, p.annotation) for p in static] == [
                (p.name, p.kind, p.default, p.annotation) for p in real
            ], name


def _cifar(**bench):
    return {
        "benchmark": {"name": "cifar10", "image_format": "rgb32", "ood_sets": ["textures"], **bench},
        "runs": {"r": {"model": "resnet18", "method": "ce"}},
        "scores": {"msp": {}},
    }


def _run(c, **changes):
    c["runs"]["tiny"].update(changes)


#: Every config mistake of issue 23 (items 2 and 5): a mutation of the test config (or a cifar10
#: config), or the text of a config file; the key or file:line the error must name; words it must hold.
MISTAKES = [
    # method_args / model_args: names and types, before any job
    (lambda c: _run(c, method_args={"label_smooth": 0.1}), "runs.tiny.method_args.label_smooth",
     ["method 'ce' has no parameter 'label_smooth'", "valid: label_smoothing"]),
    (lambda c: _run(c, method_args={"label_smoothing": "0.1x"}), "runs.tiny.method_args.label_smoothing",
     ["'0.1x' is not float"]),
    (lambda c: _run(c, method_args={"label_smoothing": "1e-1"}), "runs.tiny.method_args.label_smoothing",
     ["'1e-1' is not float", "YAML reads 1e-1 as text", "0.1"]),
    (lambda c: _run(c, method_args={"label_smoothing": True}), "runs.tiny.method_args.label_smoothing",
     ["True is not float"]),
    (lambda c: _run(c, method="oe", method_args={"aux_batch_size": 12.5}),
     "runs.tiny.method_args.aux_batch_size", ["12.5 is not int", "method 'oe': int"]),
    (lambda c: _run(c, method="oe", method_args={"oe_loss": 3}), "runs.tiny.method_args.oe_loss",
     ["3 is not str"]),
    (lambda c: _run(c, method="aoe", method_args={"steps": "five"}), "runs.tiny.method_args.steps",
     ["'five' is not int or None"]),
    (lambda c: _run(c, method="aoe", method_args={"clip": "yes please"}), "runs.tiny.method_args.clip",
     ["'yes please' is not bool"]),
    (lambda c: _run(c, method="palm", scores=["knn"], method_args={"mean": [0.5, "x"]}),
     "runs.tiny.method_args.mean", ["is not a list of float or None"]),
    (lambda c: _run(c, model_args={"widht": 0.25}), "runs.tiny.model_args.widht",
     ["model 'small_cnn' has no parameter 'widht'", "valid: width, dropout"]),
    (lambda c: _run(c, model_args={"width": "wide"}), "runs.tiny.model_args.width",
     ["'wide' is not float", "model 'small_cnn': float"]),
    (lambda c: _run(c, model_args={"num_classes": 3}), "runs.tiny.model_args.num_classes",
     ["has no parameter 'num_classes'"]),
    # dataset sizes larger than the source (catalog benchmarks)
    (lambda c: c.update(_cifar(train_per_class=100000)), "benchmark.train_per_class",
     ["100000 + val_per_class 50 images per class", "'cifar10' holds 5000 per class"]),
    (lambda c: c.update(_cifar(train_per_class=4951)), "benchmark.train_per_class", ["holds 5000"]),
    (lambda c: c.update(_cifar(train_per_class=None, val_per_class=5000)), "benchmark.val_per_class",
     ["5000 images per class"]),
    (lambda c: c.update(_cifar(test_per_class=1001)), "benchmark.test_per_class",
     ["test split of 'cifar10' holds 1000 per class"]),
    # unknown keys list the valid ones
    (lambda c: c.update(sed=1), "sed", ["unknown key 'sed'", "valid keys: ", "seed"]),
    (lambda c: _run(c, epoch=3), "runs.tiny.epoch", ["unknown key 'epoch'", "epochs"]),
    # config files: YAML mistakes name the file and the line
    ("seed: 0\nruns:\n\ttiny: {}\n", ":3:1", ["not valid YAML", "holds a tab"]),
    ("", "", ["empty (no YAML content)"]),
    ("seed: 0\nseed: 1\n", ":2:1", ["found the key 'seed' a second time (first at line 1)"]),
    ("seed: 0\nruns: [a\n", ":3:1", ["not valid YAML"]),
]  # fmt: skip


@pytest.mark.parametrize("mistake, where, words", MISTAKES)
def test_every_config_mistake_is_caught_before_any_job(test_config, tmp_path, mistake, where, words):
    if isinstance(mistake, str):
        path = tmp_path / "c.yaml"
        path.write_text(mistake)
        with pytest.raises(cfg.ConfigError) as info:
            cfg.load(path)
        assert str(info.value).startswith(f"{path}{where}: "), str(info.value)
    else:
        bad = copy.deepcopy(test_config)
        mistake(bad)
        with pytest.raises(cfg.ConfigError) as info:
            cfg.validate(bad)
        assert f"config error at {where}: " in str(info.value), str(info.value)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_good_method_and_model_args_pass(test_config):
    good = copy.deepcopy(test_config)
    _run(good, method="aoe", method_args={"steps": None, "eps": 1, "clip": False, "mean": [0.5]})
    for spec in good["runs"].values():  # (runs initialised from tiny train the same model)
        spec["model_args"] = {"width": 1, "dropout": 0.1}
    assert cfg.validate(good)["runs"]["tiny"]["method_args"]["eps"] == 1  # an int is a float
    cfg.validate(_cifar(train_per_class=4950, test_per_class=1000))  # exactly what the source holds
