"""oodflow.smoke.shrink: every paper config at toy scale, by the schema's x-smoke rules."""

from __future__ import annotations

import inspect

import jsonschema
import pytest
import yaml

from oodflow import config as cfg
from oodflow.smoke import shrink as sh
from workflow_runner import ROOT

PAPERS = sorted((ROOT / "config" / "papers").glob("*.yaml"))
TINY = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())

# The fakes' contract (issue 17): images per class in train / val-test splits, per OOD-only set, in
# tinyimages_300k and per published GAN samples file.
FAKE_TRAIN, FAKE_TEST, FAKE_OOD, FAKE_AUX, FAKE_GAN = 4, 3, 40, 256, 64


@pytest.fixture(scope="module")
def shrunk():
    return {p.stem: (cfg.load(p), sh.shrink(cfg.load(p))) for p in PAPERS}


def test_there_are_fourteen_paper_configs():
    assert len(PAPERS) == 14


@pytest.mark.parametrize("paper", [p.stem for p in PAPERS])
def test_paper_config_shrinks_to_toy_scale(shrunk, paper):
    orig, out = shrunk[paper]
    assert out["smoke"] is True and orig["smoke"] is False
    assert cfg.validate(out) == out  # valid, and validating again changes nothing
    assert sh.shrink(out) == out  # idempotent
    b = out["benchmark"]
    if orig["runs"]:
        assert b["train_per_class"] + b["val_per_class"] <= FAKE_TRAIN
        assert b["test_per_class"] <= FAKE_TEST and b["ood_size"] <= FAKE_OOD
        assert b["aux_size"] <= FAKE_AUX and b["gan"]["samples"] <= FAKE_GAN and b["gan"]["epochs"] == 1
    for run, spec in out["runs"].items():
        assert spec["epochs"] == 1, run
        assert spec.get("warmup_epochs", 0) == 0, run
        assert (spec.get("outliers") or {}).get("count") in (None, *range(1, FAKE_GAN + 1)), run
        if spec.get("hpo"):
            hpo = spec["hpo"]
            assert hpo["n_trials"] == 2 and hpo["epochs"] == 1 and hpo["holdout"] < b["aux_size"]
    # Every table keeps its rows and columns.
    for key in ("scores", "name", "seed"):
        assert list(out[key]) == list(orig[key]) if isinstance(out[key], dict) else out[key] == orig[key]
    assert (
        b["ood_sets"] == orig["benchmark"]["ood_sets"]
        and b["image_format"] == orig["benchmark"]["image_format"]
    )
    swept = {f"{name}-" for name in orig["sweeps"]}
    plain = [r for r in orig["runs"] if not any(r.startswith(s) for s in swept)]
    assert [r for r in out["runs"] if r in plain] == plain
    assert set(out["runs"]) <= set(orig["runs"])
    for name, sweep in out["sweeps"].items():
        assert sweep["values"] == orig["sweeps"][name]["values"][:1]
    assert [c["name"] for c in out["report"]["comparisons"]] == [
        c["name"] for c in orig["report"]["comparisons"]
    ]
    if orig.get("adversarial"):
        assert out["adversarial"]["eps"] == orig["adversarial"]["eps"][:2]
        assert out["adversarial"]["scores"] == orig["adversarial"]["scores"]
    if orig.get("osr"):
        o, oo = out["osr"], orig["osr"]
        assert (o["datasets"], o["splits"], list(o["methods"])) == (
            oo["datasets"],
            oo["splits"],
            list(oo["methods"]),
        )
        assert o["trials"] == oo["trials"][:1]  # one trial: the OSR jobs are most of a smoke's cost
        assert o["train"]["epochs"] == 1 and o["scores"]["knn"]["k"] <= 5
    if orig.get("multilabel"):
        m, mo = out["multilabel"], orig["multilabel"]
        assert list(m["runs"]) == list(mo["runs"]) and list(m["scores"]) == list(mo["scores"])
        assert m["benchmark"]["ood_sets"] == mo["benchmark"]["ood_sets"] and m["tail"]["j"] == mo["tail"]["j"]
        assert all(spec["epochs"] == 1 for spec in m["runs"].values())
        assert m["benchmark"]["image_size"] == 64 and m["benchmark"]["val_size"] <= 10
        assert m["oe_selection"]["candidates"] == mo["oe_selection"]["candidates"]
        assert m["runs"]["edge"]["objective_args"]["start_epoch"] == 0  # the gap term runs in epoch 0


def test_sweeps_keep_their_first_value_and_its_run(shrunk):
    orig, out = shrunk["aoe_cifar10"]
    assert len(orig["runs"]) == 62
    assert list(out["runs"]) == ["baseline", "aoe_eps-0p0", "oe_sigma-0p0", "aoe_sigma-0p0", "eps_gauss-0p0",
                                 "aoe_count-1"]  # fmt: skip
    assert out["runs"]["aoe_count-1"]["outliers"]["count"] == 1  # below the smoke cap (32): kept
    assert out["runs"]["aoe_eps-0p0"]["outliers"]["count"] == 32  # 9984 capped


def test_crosspaper_and_palm_cpu_knobs(shrunk):
    _, out = shrunk["crosspaper_cifar100"]
    assert out["runs"]["palm"]["method_args"] == {
        "augmentation": "simclr",
        "n_proto": 2,
        "k": 2,
        "proj_dim": 32,
    }
    assert out["runs"]["edge"]["method_args"] == {"start_epoch": 0}
    assert out["scores"]["knn"] == {"k": 5} and out["scores"]["vim"] == {"dim": 8}
    assert out["report"]["bootstrap"] == 10 and out["plots"]["dpi"] == 50
    _, palm = shrunk["palm_cifar100"]
    assert palm["scores"]["knn"] == {"k": 5, "backend": "torch"}
    assert palm["runs"]["adapt"]["method_args"]["n_proto"] == 2
    _, food = shrunk["food101"]
    assert food["scores"]["cores"] == {"layers": 2}
    assert food["benchmark"]["aux_size"] == 48  # null (all 300K) becomes the smoke value


def test_parser_args_of_needed_datasets_are_capped(shrunk):
    _, out = shrunk["cifar10"]
    assert out["datasets"]["places365_val"]["parser_args"] == {"ood_size": 40}
    _, aoe = shrunk["aoe_cifar10"]  # needs no places365_val: nothing added
    assert "places365_val" not in aoe["datasets"]
    raw = yaml.safe_load((ROOT / "config" / "papers" / "cifar10.yaml").read_text())
    raw["datasets"] = {"places365_val": {"parser_args": {"ood_size": 25}}}
    assert sh.shrink(cfg.validate(raw))["datasets"]["places365_val"]["parser_args"] == {"ood_size": 25}


def test_values_below_the_smoke_value_are_kept_and_null_becomes_it():
    raw = {**TINY, "benchmark": {**TINY["benchmark"], "test_per_class": 1, "ood_size": 7}}
    out = sh.shrink(cfg.validate(raw))
    b = out["benchmark"]
    assert (b["train_per_class"], b["val_per_class"], b["test_per_class"], b["ood_size"]) == (2, 1, 1, 7)
    assert out["scores"]["knn"] == {"k": 5}
    assert out["runs"]["tiny"]["epochs"] == 1
    assert sh.apply_rule(3, None) == 3 and sh.apply_rule(3, 2) == 2 and sh.apply_rule(3, 10) == 3
    assert sh.apply_rule({"first": 2}, [5, 6, 7]) == [5, 6] and sh.apply_rule({"first": 2}, None) is None
    with pytest.raises(ValueError, match="unknown x-smoke rule"):
        sh.apply_rule({"last": 2}, [1])


def test_seeds_keep_two_and_sweeps_with_a_capped_parameter():
    raw = {
        **TINY,
        "seeds": [0, 1, 2],
        "sweeps": {
            "ep": {
                "template": {
                    "model": "small_cnn",
                    "model_args": {"width": 0.25},
                    "method": "ce",
                    "init_from": "tiny",
                },
                "param": "epochs",
                "values": [3, 5, 1],
            },
            "lr": {
                "template": {"model": "small_cnn", "method": "ce"},
                "param": "lr",
                "values": [0.1, 0.2, 0.3],
            },
        },  # fmt: skip
        "report": {
            "comparisons": [{"name": "c", "baseline": "tiny", "candidate": "lr-0p3", "scores": ["msp"]}]
        },
        "adversarial": {"runs": ["tiny", "lr-0p2", "ep-5"]},
    }
    full = cfg.validate(raw)
    assert cfg.validate(full) == full  # seeds + sweeps validate twice (the sweep runs are re-added)
    out = sh.shrink(full)
    assert out["seeds"] == [0, 1]
    # epochs 3, 5, 1 all become 1: one run; lr keeps 0.1 and 0.3 (a comparison names it)
    assert out["sweeps"]["ep"]["values"] == [1] and out["sweeps"]["lr"]["values"] == [0.1, 0.3]
    bases = ("tiny", "tiny_arpl", "ep-1", "lr-0p1", "lr-0p3")
    assert list(out["runs"]) == [f"{r}-s{s}" for r in bases for s in (0, 1)]
    assert out["runs"]["ep-1-s1"]["init_from"] == "tiny-s1"
    assert [c["name"] for c in out["report"]["comparisons"]] == ["c-s0", "c-s1"]
    # lr-0p2 is past the kept value and named by nothing that keeps it: its adversarial entry goes
    assert out["adversarial"]["runs"] == ["tiny-s0", "tiny-s1", "ep-1-s0", "ep-1-s1"]
    assert sh.shrink(out) == out


def test_validation_ignores_the_keyword():
    schema = cfg.load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    rules = dict(sh.smoke_rules(schema))
    assert rules["runs.*.epochs"] == 1 and rules["sweeps.*.template.epochs"] == 1
    assert rules["sweeps.*.values"] == {"first": 1} and rules["seeds"] == {"first": 2}
    assert rules["multilabel.runs.*.epochs"] == 1 and rules["osr.trials"] == {"first": 1}
    assert rules["datasets.places365_val.parser_args.ood_size"] == 40
    for path, rule in sh.smoke_rules(schema):
        assert isinstance(rule, (int, float)) or set(rule) == {"first"}, path


def test_argument_tables_name_real_keyword_arguments():
    from oodflow.data.catalog import DATASETS, parser
    from oodflow.methods import METHODS
    from oodflow.multilabel import ML_OBJECTIVES
    from oodflow.scores import SCORES

    for method, args in sh.METHOD_ARGS.items():
        params = inspect.signature(METHODS.get(method)).parameters
        assert set(args) <= set(params), method
    for objective, args in sh.OBJECTIVE_ARGS.items():
        assert set(args) <= set(inspect.signature(ML_OBJECTIVES.get(objective)).parameters), objective
    for score, args in sh.SCORE_ARGS.items():
        assert set(args) <= set(inspect.signature(SCORES.get(score)).parameters), score
    for name, args in sh.PARSER_ARGS.items():
        assert set(args) <= set(inspect.signature(parser(DATASETS.get(name))).parameters), name
    from oodflow.models import MODELS

    for model, args in sh.MODEL_ARGS.items():
        assert set(args) <= set(inspect.signature(MODELS.get(model)).parameters), model


def test_models_shrink_in_width_unless_pretrained(shrunk):
    _, food = shrunk["food101"]
    assert all(spec["model_args"]["width"] == 0.25 for spec in food["runs"].values())
    _, edge = shrunk["edge_voc2012"]
    assert all("width" not in spec.get("model_args", {}) for spec in edge["multilabel"]["runs"].values())


def test_multilabel_image_size_caps_the_benchmark_side():
    from oodflow.multilabel.steps import data_params, ml_benchmark

    raw = yaml.safe_load((ROOT / "config" / "papers" / "edge_voc2012.yaml").read_text())
    full = cfg.validate(raw)
    assert ml_benchmark(full).image_size == 256 and "image_size" not in data_params(full, "id")
    out = sh.shrink(full)
    assert ml_benchmark(out).image_size == 64 and data_params(out, "oe")["image_size"] == 64
    embedded = cfg.validate({"multilabel": {"benchmark": {"name": "mnist5k-ml", "image_size": 64},
                                            "runs": {"r": {"model": "small_cnn", "objective": "bce"}},
                                            "scores": {"joint_energy": {}}}})  # fmt: skip
    assert ml_benchmark(embedded).image_size == 32 and "image_size" not in data_params(embedded, "id")


def test_cli_prints_the_shrunk_yaml(capsys):
    assert sh.main([str(ROOT / "config" / "papers" / "food101.yaml")]) == 0
    out = yaml.safe_load(capsys.readouterr().out)
    assert out["smoke"] is True and out["runs"]["energy_ft"]["hpo"]["n_trials"] == 2
    assert sh.main(["--rules"]) == 0
    assert "runs.*.epochs: 1" in capsys.readouterr().out
