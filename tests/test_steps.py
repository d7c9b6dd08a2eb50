"""The rule functions of oodflow.steps on a paper backbone served as 3x32x32 (no Snakemake)."""

from __future__ import annotations

import numpy as np
import pytest

from oodflow import checkpoint, steps
from oodflow.config import validate
from oodflow.io import load_npz
from oodflow.scores import NETWORK_SCORES


@pytest.fixture
def rgb_config(test_config):
    raw = dict(test_config)
    raw["benchmark"] = dict(raw["benchmark"], image_format="rgb32", ood_sets=["uniform"])
    raw["runs"] = {"wrn": {"model": "wrn40_2", "model_args": {"width": 0.25}, "method": "ce", "epochs": 1}}
    raw["scores"] = {"energy": {}, "odin": {"temperature": 1000.0, "epsilon": 0.0014}, "vim": {"dim": 8}}
    return validate(raw)


def test_paper_backbone_runs_through_every_step(rgb_config, tmp_path):
    d = tmp_path / "data"
    steps.build_id(rgb_config, {s: str(d / f"{s}.npz") for s in ("train", "val", "test")})
    steps.build_ood(rgb_config, "uniform", str(d / "ood" / "uniform.npz"))
    model_pt, ckpt = tmp_path / "model.pt", tmp_path / "last.pt"
    steps.train(
        rgb_config,
        "wrn",
        str(d / "train.npz"),
        str(d / "val.npz"),
        str(model_pt),
        str(tmp_path / "log.csv"),
        str(ckpt),
    )
    assert not ckpt.exists()
    payload = checkpoint.load(model_pt)
    assert payload["meta"]["in_channels"] == 3 and payload["config"]["run"]["model"] == "wrn40_2"
    assert (tmp_path / "log.csv").read_text().splitlines()[
        0
    ] == "epoch,lr,train_loss,train_acc,val_loss,val_acc"

    sources = {"train": d / "train.npz", "id": d / "test.npz", "uniform": d / "ood" / "uniform.npz"}
    caches = {name: str(tmp_path / f"cache_{name}.npz") for name in sources}
    steps.extract(rgb_config, str(model_pt), [str(p) for p in sources.values()], list(caches.values()))
    with pytest.raises(ValueError, match="2 data files but 1 outputs"):
        steps.extract(rgb_config, str(model_pt), [str(sources["id"])] * 2, [caches["id"]])
    cache = load_npz(caches["id"])
    assert cache["features"].shape[1] == cache["head_weight"].shape[1] == 32  # 128 channels x width 0.25
    np.testing.assert_allclose(
        cache["features"] @ cache["head_weight"].T + cache["head_bias"], cache["logits"], rtol=1e-4, atol=1e-4
    )

    data = {"id": str(d / "test.npz"), "uniform": str(d / "ood" / "uniform.npz")}
    evaluated = {k: v for k, v in caches.items() if k != "train"}
    for score in rgb_config["scores"]:
        out = tmp_path / f"{score}.npz"
        steps.score(rgb_config, score, str(model_pt), caches["train"], evaluated, data, str(out))
    # all post-hoc scores in one call give the same bytes as one call each
    posthoc = [s for s in rgb_config["scores"] if s not in NETWORK_SCORES]
    outs = [str(tmp_path / f"batched_{s}.npz") for s in posthoc]
    steps.posthoc_scores(rgb_config, posthoc, caches["train"], evaluated, outs)
    for name in posthoc:
        assert (tmp_path / f"batched_{name}.npz").read_bytes() == (tmp_path / f"{name}.npz").read_bytes()
    with pytest.raises(ValueError, match="odin need the network"):
        steps.posthoc_scores(rgb_config, ["odin"], caches["train"], evaluated, outs[:1])
    with pytest.raises(ValueError, match="2 scores but 1 outputs"):
        steps.posthoc_scores(rgb_config, posthoc[:2], caches["train"], evaluated, outs[:1])
        values = load_npz(out)
        assert set(values) == {"id", "uniform"} and len(values["id"]) == len(cache["labels"])
    # ODIN's step gets the benchmark's std: epsilon is in pixel units (mnist5k: std 0.3081, one channel)
    import torch

    from oodflow.data import BENCHMARKS
    from oodflow.data.benchmarks import load_inputs
    from oodflow.scores import build_score
    from oodflow.training import load_model

    bench = BENCHMARKS.get("mnist5k")
    x, _ = load_inputs(data["uniform"], bench, "rgb32")
    model, _ = load_model(str(model_pt), torch.device("cpu"))
    odin = build_score("odin", temperature=1000.0, epsilon=0.0014).set_normalisation(bench.mean, bench.std)
    expected = torch.cat(
        [odin.score_inputs(model, torch.from_numpy(x[i : i + 256])) for i in range(0, len(x), 256)]
    )
    np.testing.assert_allclose(
        load_npz(tmp_path / "odin.npz")["uniform"], expected.double().numpy(), rtol=1e-6
    )
    energy = load_npz(tmp_path / "energy.npz")["id"]
    logits = cache["logits"].astype(np.float64)
    m = logits.max(1)
    np.testing.assert_allclose(energy, m + np.log(np.exp(logits - m[:, None]).sum(1)), rtol=1e-9)


def test_adding_an_ood_set_retrains_nothing(test_config):
    base = validate(test_config)
    more = validate(
        {**test_config, "benchmark": {**test_config["benchmark"], "ood_sets": ["faces"], "ood_size": 7}}
    )
    assert steps.run_config(base, "tiny") == steps.run_config(more, "tiny")
    assert steps.data_config(base, "id") == steps.data_config(more, "id")
    assert steps.data_config(base, "ood") != steps.data_config(more, "ood")
    changed = validate({**test_config, "benchmark": {**test_config["benchmark"], "image_format": "rgb32"}})
    assert steps.run_config(base, "tiny") != steps.run_config(changed, "tiny")


def test_outlier_exposure_run_trains_on_the_aux_pool(test_config, tmp_path):
    raw = {**test_config, "runs": {"oe": {"model": "small_cnn", "model_args": {"width": 0.25}, "method": "oe",
                                          "method_args": {"aux_batch_size": 16}, "epochs": 1}}}  # fmt: skip
    config = validate(raw)
    d = tmp_path / "data"
    steps.build_id(config, {s: str(d / f"{s}.npz") for s in ("train", "val", "test")})
    steps.build_aux(config, str(d / "aux.npz"))
    args = (config, "oe", str(d / "train.npz"), str(d / "val.npz"))
    with pytest.raises(ValueError, match="auxiliary outliers"):
        steps.train(*args, str(tmp_path / "m0.pt"), str(tmp_path / "l0.csv"), str(tmp_path / "c0.pt"))
    for k in (1, 2):
        outs = [str(tmp_path / f"{kind}{k}.{ext}") for kind, ext in (("m", "pt"), ("l", "csv"), ("c", "pt"))]
        steps.train(*args, *outs, aux_npz=str(d / "aux.npz"))
    assert (tmp_path / "m1.pt").read_bytes() == (tmp_path / "m2.pt").read_bytes()
    assert steps.run_config(config, "oe")["benchmark"]["aux_size"] == config["benchmark"]["aux_size"]


def test_fine_tuning_starts_from_the_parent_run(test_config, tmp_path):
    import torch

    tiny = test_config["runs"]["tiny"]
    raw = {
        **test_config,
        "runs": {"tiny": tiny, "ft": {**tiny, "init_from": "tiny", "lr": 1e-9, "epochs": 1}},
    }
    config = validate(raw)
    d = tmp_path / "data"
    steps.build_id(config, {s: str(d / f"{s}.npz") for s in ("train", "val", "test")})
    common = (str(d / "train.npz"), str(d / "val.npz"))
    steps.train(
        config, "tiny", *common, str(tmp_path / "tiny.pt"), str(tmp_path / "t.csv"), str(tmp_path / "c")
    )
    steps.train(config, "ft", *common, str(tmp_path / "ft.pt"), str(tmp_path / "f.csv"), str(tmp_path / "c2"),
                init_pt=str(tmp_path / "tiny.pt"))  # fmt: skip
    parent, child = (
        checkpoint.load(tmp_path / "tiny.pt")["model"],
        checkpoint.load(tmp_path / "ft.pt")["model"],
    )
    weights = [k for k in parent if k.endswith("weight")]
    assert all(torch.allclose(parent[k], child[k], atol=1e-6) for k in weights)  # lr 1e-9: barely moved
    assert steps.run_config(config, "ft")["init"] == steps.run_config(config, "tiny")
