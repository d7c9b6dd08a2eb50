"""Per-dataset parser options (config ``datasets.<name>.parser_args``): validated against the parser's
signature, passed by ``steps.prepare``, recorded, part of exactly the params they determine."""

from __future__ import annotations

import json

import pytest

from oodflow import steps
from oodflow.config import ConfigError, validate
from oodflow.data.stored import load_set
from test_formats_download import PACKAGING, WRITERS, package


def cifar_config(datasets=None, **bench):
    config = {
        "benchmark": {
            "name": "cifar10",
            "image_format": "rgb32",
            "ood_sets": ["textures", "places365"],
            "ood_size": None,
            **bench,
        },
        "runs": {"r": {"model": "resnet18", "method": "ce"}},
        "scores": {"msp": {}},
    }
    if datasets is not None:
        config["datasets"] = datasets
    return validate(config)


def test_options_are_optional_and_defaults_filled():
    assert cifar_config()["datasets"] == {}
    assert cifar_config({"places365_val": {}})["datasets"] == {"places365_val": {"parser_args": {}}}
    config = cifar_config({"places365_val": {"parser_args": {"ood_size": 10}}})
    assert steps.parser_args(config, "places365_val") == {"ood_size": 10}
    assert steps.parser_args(config, "dtd") == {}


@pytest.mark.parametrize(
    "datasets, message",
    [
        (
            {"places365": {"parser_args": {"ood_size": 5}}},  # the OOD set's name, not the dataset's
            "config error at datasets.places365: unknown dataset 'places365'; valid names: cifar10, ",
        ),
        (
            {"places365_val": {"parser_args": {"size": 5}}},
            "config error at datasets.places365_val.parser_args.size: the parser of 'places365_val' "
            "(oodflow.data.sources.large:parse_places365_val) has no parameter 'size' (valid: ood_size)",
        ),
        (
            {"dtd": {"parser_args": {"ood_size": 5}}},
            "config error at datasets.dtd.parser_args.ood_size: the parser of 'dtd' "
            "(oodflow.data.sources.large:parse_dtd) has no parameter 'ood_size' (valid: none)",
        ),
        (
            {"places365_val": {"ood_size": 5}},
            "config error at datasets.places365_val.ood_size: unknown key 'ood_size'; "
            "valid keys: parser_args",
        ),
        (
            {"places365_val": {"parser_args": [5]}},
            "config error at datasets.places365_val.parser_args: [5] is not of type 'object'",
        ),
    ],
)
def test_bad_options_name_the_key(datasets, message):
    with pytest.raises(ConfigError) as info:
        cifar_config(datasets)
    assert str(info.value).startswith(message), str(info.value)


def test_options_enter_only_the_params_they_determine():
    plain = cifar_config()
    # no options: the params of every data rule are what they were before options existed
    assert steps.data_config(plain, "id") == {
        "seed": 0,
        "name": "cifar10",
        "train_per_class": 350,
        "val_per_class": 50,
        "test_per_class": 100,
    }
    assert steps.data_config(plain, "ood", "places365") == {"seed": 0, "name": "cifar10", "ood_size": None}
    places = cifar_config({"places365_val": {"parser_args": {"ood_size": 7}}})
    assert steps.data_config(places, "ood", "places365") == {
        **steps.data_config(plain, "ood", "places365"),
        "parser_args": {"places365_val": {"ood_size": 7}},
    }
    for kind, name in (("ood", "textures"), ("id", None), ("aux", None)):
        assert steps.data_config(places, kind, name) == steps.data_config(plain, kind, name)
    assert steps.run_config(places, "r") == steps.run_config(plain, "r")  # retrains nothing


@pytest.fixture
def places_downloads(tmp_path):
    layout = tmp_path / "layout"
    layout.mkdir()
    WRITERS["places365_val"](layout)  # 12 val images
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    return [
        str(package(layout, entries, downloads / filename))
        for filename, entries in PACKAGING["places365_val"].items()
    ]


def test_prepare_checks_passes_and_records_the_options(places_downloads, tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prepared"
    with pytest.raises(ConfigError, match=r"has no parameter 'size' \(valid: ood_size\)"):
        steps.prepare("places365_val", places_downloads, str(raw), str(out), {"size": 3})
    assert not raw.exists() and not out.exists()  # refused before unpacking anything

    steps.prepare("places365_val", places_downloads, str(raw), str(out), {"ood_size": 3})
    assert json.loads((out / "prepared.json").read_text())["splits"]["ood10k"] == {"count": 3}
    assert steps.prepared_with(out) == {"ood_size": 3}
    assert steps.prepared_with(tmp_path / "elsewhere") == {}  # nothing recorded: no options


def test_stored_sets_refuse_a_dataset_prepared_with_other_options(places_downloads, tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prepared"
    steps.prepare("places365_val", places_downloads, str(raw), str(out), {"ood_size": 3})
    asked = cifar_config({"places365_val": {"parser_args": {"ood_size": 4}}})
    target = tmp_path / "places365.npz"
    with pytest.raises(ValueError) as info:
        steps.build_ood(asked, "places365", str(target), str(out), str(raw))
    message = str(info.value)
    assert "prepared with parser_args {'ood_size': 3}" in message and "asks for {'ood_size': 4}" in message
    assert "datasets.places365_val.parser_args" in message and not target.exists()

    same = cifar_config({"places365_val": {"parser_args": {"ood_size": 3}}})
    steps.build_ood(same, "places365", str(target), str(out), str(raw))
    x, y = load_set(target)
    assert x.shape == (3, 32, 32, 3) and (y == -1).all()
