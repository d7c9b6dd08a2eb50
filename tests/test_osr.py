"""Open-set recognition (issue 8): splits, data, networks, method steps, metrics, tables, config."""

from __future__ import annotations

import copy
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from oodflow.config import ConfigError, validate
from oodflow.io import write_json
from oodflow.osr import METHOD_DEFAULTS, OSR_METHODS, OSR_SCORES, build_method
from oodflow.osr import data as osr_data
from oodflow.osr.evaluate import open_set_f1, open_set_threshold, oscr, oscr_curve
from oodflow.osr.networks import Classifier32, Discriminator32, Generator32, MultiBatchNorm
from oodflow.osr.report import COLUMNS, long_form, table
from oodflow.osr.splits import DATASETS, FAMILIES, SPLITS_PATH, TRIALS, split_tables, task
from oodflow.report.tables import COLUMNS as SPINE_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
# The shared specification's copy (beside the main checkout; a worktree may sit one level deeper).
SHARED = [p / "shared/reference/osr_splits.json" for p in ROOT.parents]
TRAIN = {
    "optimizer": "sgd",
    "lr": 0.01,
    "momentum": 0.0,
    "weight_decay": 0.0,
    "milestones": [100],
    "gamma": 0.1,
    "width": 0.125,
}


# ------------------------------------------------------------------------------------------ splits
def test_packaged_splits_are_the_shared_file():
    shared = [p for p in SHARED if p.is_file()]
    if not shared:
        pytest.skip("shared/reference/osr_splits.json is not beside this checkout")
    assert json.loads(SPLITS_PATH.read_text()) == json.loads(shared[0].read_text())


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", list(DATASETS))
def test_every_trial_reads_the_table_in_reverse_order(name, family):
    raw = json.loads(SPLITS_PATH.read_text())[f"splits_{family}"]  # read the file, never retype lists
    ds = DATASETS[name]
    for trial in TRIALS:
        t = task(name, family, trial)
        assert list(t.known) == raw[ds.split_key][4 - trial]
        assert t.mapping() == {str(c): j for j, c in enumerate(raw[ds.split_key][4 - trial])}
        if ds.unknown_key is None:  # disjoint and covering the same label space
            assert not set(t.known) & set(t.unknown)
            assert sorted(t.known + t.unknown) == list(range(ds.label_space))
        else:  # CIFAR+N: CIFAR-10 knowns [0, 1, 8, 9], unknowns the listed CIFAR-100 classes
            assert t.known == (0, 1, 8, 9) and list(t.unknown) == raw[ds.unknown_key][4 - trial]
            assert len(t.unknown) == int(ds.unknown_key.split("-")[1]) == len(set(t.unknown))
            assert set(t.unknown) <= set(range(100))  # CIFAR-100 labels (another label space)


def test_split_table_facts_of_the_specification():
    f1 = split_tables()["F1"]
    assert task("cifar10", "F1", 0).known == tuple(f1["cifar10"][4]) == (2, 8, 7, 3, 5, 1)
    assert task("tinyimagenet", "AUROC", 2).known == task("tinyimagenet", "F1", 2).known
    assert task("mnist5k", "AUROC", 3).known == task("mnist", "AUROC", 3).known
    with pytest.raises(KeyError, match="valid names: mnist, svhn"):
        task("cifar11", "F1", 0)
    with pytest.raises(ValueError, match="trial"):
        task("mnist", "F1", 5)


def _prepared(root: Path, name: str, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    from oodflow.io import save_npz

    folder = root / name
    for split, (x, y) in splits.items():
        save_npz(folder / f"{split}.npz", x=x, y=y)
    counts = {s: {"count": len(v[1])} for s, v in splits.items()}
    write_json(folder / "prepared.json", {"dataset": name, "form": "array", "splits": counts})
    return str(folder)


def _images(labels: list[int], value: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """One image per label, every pixel = ``value`` (marks where an image comes from)."""
    y = np.asarray(labels, dtype=np.int64)
    return np.full((len(y), size, size, 3), value, dtype=np.uint8), y


@pytest.mark.parametrize("name", ["cifar_plus10", "cifar_plus50"])
def test_cifar_plus_unknowns_are_cifar100_test_images_only(tmp_path, name):
    prepared = {
        "cifar10": _prepared(tmp_path, "cifar10", {"train": _images(list(range(10)) * 2, 10),
                                                    "test": _images(list(range(10)), 20)}),
        "cifar100": _prepared(tmp_path, "cifar100", {"train": _images(list(range(100)), 30),
                                                      "test": _images(list(range(100)) * 2, 40)}),
    }  # fmt: skip
    arrays, meta = osr_data.build(name, "F1", 1, prepared=prepared)
    t = task(name, "F1", 1)
    assert (arrays["unknown_x"] == 40).all() and sorted(set(arrays["unknown_y"].tolist())) == sorted(
        t.unknown
    )
    assert len(arrays["unknown_y"]) == 2 * len(t.unknown)
    assert (arrays["train_x"] == 10).all() and (arrays["test_x"] == 20).all()
    assert sorted(arrays["train_y"].tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]  # 0,1,8,9 -> 0..3
    assert (
        meta["mapping"] == {"0": 0, "1": 1, "8": 2, "9": 3} and meta["sources"]["unknown"] == "cifar100/test"
    )


def test_known_labels_are_remapped_in_listed_order_and_images_are_rgb32(tmp_path):
    digits = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 28, 28, 1), np.uint8)
    prepared = {
        "mnist": _prepared(
            tmp_path, "mnist", {"train": (digits, np.arange(10)), "test": (digits, np.arange(10))}
        )
    }
    arrays, meta = osr_data.build("mnist", "F1", 0, prepared=prepared)
    known = task("mnist", "F1", 0).known
    assert arrays["train_x"].shape == (6, 32, 32, 3) and arrays["train_x"].dtype == np.uint8
    for x, y in zip(arrays["train_x"], arrays["train_y"]):
        assert int(x[16, 16, 0]) == known[y]  # pixel value = source label
    assert sorted(arrays["unknown_y"].tolist()) == sorted(set(range(10)) - set(known))
    assert osr_data.to_input(arrays["train_x"]).max() <= 9 / 255 + 1e-7  # x / 255, no normalisation


def test_embedded_mnist5k_benchmark():
    arrays, meta = osr_data.build("mnist5k", "F1", 0, train_per_class=3, test_per_class=2)
    t = task("mnist5k", "F1", 0)
    assert meta["counts"] == {"train": 18, "test": 12, "unknown": 8}
    assert set(arrays["unknown_y"].tolist()) == set(t.unknown) and set(arrays["train_y"].tolist()) == set(
        range(6)
    )
    x = osr_data.to_input(arrays["test_x"])
    assert x.shape == (12, 3, 32, 32) and 0.0 <= x.min() and x.max() <= 1.0


# ----------------------------------------------------------------------------------------- metrics
def _oscr_by_definition(ks, correct, us) -> float:
    """methods.md 3.6 literally: loop over cut-offs of the ascending sort."""
    scores = np.concatenate([ks, us])
    k_t = np.concatenate([np.asarray(correct, float), np.zeros(len(us))])
    u_t = np.concatenate([np.zeros(len(ks)), np.ones(len(us))])
    order = np.argsort(scores, kind="stable")
    n = len(scores)
    pts = [(0.0, 0.0)] * n
    for k in range(n - 1):
        pts[k] = (u_t[order][k:].sum() / len(us), k_t[order][k + 1 :].sum() / len(ks))
    pts += [(0.0, 0.0), (1.0, 1.0)]
    pts.sort(reverse=True)
    return sum((pts[j][0] - pts[j + 1][0]) * (pts[j][1] + pts[j + 1][1]) / 2 for j in range(n + 1))


@pytest.mark.parametrize(("n_k", "n_u"), [(2, 2), (5, 3), (40, 60)])
def test_oscr_perfect_separation_is_its_closed_form(n_k, n_u):
    ks, us = np.linspace(2, 3, n_k), np.linspace(0, 1, n_u)
    assert oscr(ks, np.ones(n_k, bool), us) == pytest.approx(1 - 1 / (2 * n_k * n_u))


def test_oscr_all_misclassified_is_zero_and_chance_is_a_half():
    rng = np.random.default_rng(0)
    assert oscr(rng.random(20), np.zeros(20, bool), rng.random(30)) == 0.0
    # interleaved known/unknown scores (u < k < u < k ...), all correct: exactly 0.5
    assert oscr(np.array([1.0, 3.0]), np.ones(2, bool), np.array([0.0, 2.0])) == pytest.approx(0.5)
    n = 50
    assert oscr(np.arange(n) * 2 + 1.0, np.ones(n, bool), np.arange(n) * 2.0) == pytest.approx(0.5, abs=0.02)


def test_oscr_matches_the_definition_on_random_cases():
    rng = np.random.default_rng(1)
    for _ in range(5):
        ks, us = rng.normal(1, 1, 30).round(1), rng.normal(0, 1, 20).round(1)  # with ties
        correct = rng.random(30) < 0.7
        assert oscr(ks, correct, us) == pytest.approx(_oscr_by_definition(ks, correct, us))
    area, fpr, ccr = oscr_curve(ks, correct, us)
    assert fpr[0] == ccr[0] == 1.0 and fpr[-1] == ccr[-1] == 0.0 and np.all(np.diff(fpr) <= 0)


@pytest.mark.parametrize(("k", "expected"), [(6, 0.5333), (4, 0.575), (20, 0.475)])
def test_open_set_threshold_of_the_specification(k, expected):
    assert open_set_threshold(k, smoothing=0.5) == pytest.approx(expected, abs=5e-5)


def test_open_set_f1_on_a_hand_made_case():
    # K = 4, cut-off 0.575: confident knowns are classified, flat logits are "unknown"
    known = np.log(np.array([[0.9, 0.05, 0.03, 0.02], [0.02, 0.9, 0.05, 0.03], [0.3, 0.3, 0.2, 0.2]]))
    unknown = np.log(np.array([[0.25, 0.25, 0.25, 0.25], [0.02, 0.03, 0.9, 0.05]]))
    labels = np.array([0, 1, 2])
    # predictions: 0, 1, -1 | -1, 2 -> per class F1: -1: 2*(1/2*1/2)/(1) = 0.5, 0: 1, 1: 1, 2: 0
    assert open_set_f1(known, labels, unknown) == pytest.approx((0.5 + 1 + 1 + 0) / 4)


# ---------------------------------------------------------------------------------------- networks
def test_abn_routes_each_batch_to_its_branch():
    torch.manual_seed(0)
    net = Classifier32(3, width=0.125).train()
    before = copy.deepcopy(net.state_dict())
    net(torch.rand(4, 3, 32, 32), bn=1)
    after = net.state_dict()
    for key in before:
        if "running_mean" in key or "num_batches_tracked" in key:
            changed = not torch.equal(before[key], after[key])
            assert changed == (".bns.1." in key), key
    with pytest.raises(ValueError, match="branch 2"):
        MultiBatchNorm(4)(torch.rand(2, 4, 3, 3), bn=2)


def test_network_shapes_and_width():
    net = Classifier32(6, width=0.25)
    f1, f2, g, z = net.parts(torch.rand(2, 3, 32, 32))
    assert (
        f1.shape == (2, 32, 16, 16) and f2.shape == (2, 32, 8, 8) and g.shape == (2, 32) and z.shape == (2, 6)
    )
    assert torch.allclose(net.from_block3(f2), z) or net.training  # dropout only in training mode
    net.eval()
    f1, f2, g, z = net.parts(torch.rand(2, 3, 32, 32))
    assert torch.allclose(net.from_block2(f1), z) and torch.allclose(net.from_block3(f2), z)
    fake = Generator32(0.25)(torch.randn(3, 100, 1, 1))
    assert fake.shape == (3, 3, 32, 32) and 0 <= fake.min() and fake.max() <= 1
    p = Discriminator32(0.25)(fake)
    assert p.shape == (3,) and ((0 < p) & (p < 1)).all()
    assert Classifier32(6).feature_dim == 128


# ----------------------------------------------------------------------------------------- methods
def test_method_defaults_are_the_signatures():
    for name in OSR_METHODS.names():
        params = inspect.signature(OSR_METHODS.get(name)).parameters
        declared = {k: p.default for k, p in params.items() if k not in ("self", "num_classes", "train")}
        assert declared == METHOD_DEFAULTS[name], name
    assert set(METHOD_DEFAULTS) == set(OSR_METHODS.names())
    with pytest.raises(KeyError, match="valid names: arpl, arpl_cs, dias, softmax"):
        build_method("dais", 3, TRAIN)


def _batch(n=8, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g), torch.arange(n) % k


def _same_noise(fn, seed=5):
    torch.manual_seed(seed)  # the same dropout masks before and after a step
    out = fn()
    return float(out.detach()) if isinstance(out, torch.Tensor) else float(out)


def test_arpl_step_lowers_its_loss_and_grows_the_radius():
    torch.manual_seed(0)
    m = build_method("arpl", 3, TRAIN, weight_pl=0.1)
    m.train_mode()
    x, y = _batch()
    before = _same_noise(lambda: m.classifier_loss(x, y)[0])
    r0 = float(m.nets["criterion"].radius.detach())
    _same_noise(lambda: m.step("classifier", x, y)["loss"])
    assert _same_noise(lambda: m.classifier_loss(x, y)[0]) < before
    # the margin term max(0, d_y - R + 1) is active at R = 0: its gradient raises R
    assert float(m.nets["criterion"].radius.detach()) > r0
    logits = m.nets["criterion"].logits(torch.zeros(2, m.nets["net"].feature_dim))
    pts = m.nets["criterion"].points.detach()
    assert torch.allclose(logits[0], (pts**2).mean(1), atol=1e-6)  # at g = 0: |P|^2 / D - 0


def test_arpl_cs_generator_step_makes_fakes_ambiguous():
    torch.manual_seed(0)
    m = build_method("arpl_cs", 3, TRAIN, beta=50.0)  # the confusing-sample term dominates G's loss
    m.train_mode()
    z = torch.randn(8, 100, 1, 1)
    G = m.nets["generator"]
    before = _same_noise(lambda: m.fake_loss(G(z)))
    for _ in range(3):
        _same_noise(lambda: _g_step(m, z, lambda fake: m.beta * m.fake_loss(fake)))
    assert _same_noise(lambda: m.fake_loss(G(z))) < before  # exp(-entropy) falls: ambiguous fakes


def _g_step(m, z, loss_fn):
    opt = m.optimizers["generator"]
    opt.zero_grad()
    loss = loss_fn(m.nets["generator"](z))
    loss.backward()
    opt.step()
    return loss


def test_dias_gan_pass_directions():
    torch.manual_seed(0)
    m = build_method("dias", 3, TRAIN, beta=50.0)
    m.train_mode()
    x, y = _batch()
    z = torch.randn(8, 100, 1, 1)
    G = m.nets["generator"]
    # G maximises the classifier's CE to uniform on its fakes (L_G = errG - beta * errG_F)
    err_f0 = _same_noise(lambda: m.generator_terms(G(z), y)[1])
    for _ in range(3):
        _same_noise(lambda: _g_step(m, z, lambda fake: -m.beta * m.generator_terms(fake, y)[1]))
    assert _same_noise(lambda: m.generator_terms(G(z), y)[1]) > err_f0
    # the classifier step pulls the fakes' predictions back toward uniform and lowers its loss
    fake = G(z).detach()
    loss0, _, term0 = m.classifier_gan_loss(x, y, fake)
    for _ in range(3):
        torch.manual_seed(5)
        loss, _, _ = m.classifier_gan_loss(x, y, fake)
        m.optimizers["net"].zero_grad()
        loss.backward()
        m.optimizers["net"].step()
    torch.manual_seed(5)
    loss1, _, term1 = m.classifier_gan_loss(x, y, fake)
    # beta = 50: the fake term dominates the loss, and both fall
    assert float(loss1.detach()) < float(loss0.detach()) and float(term1.detach()) < float(term0.detach())
    stats = m.gan_step(x, y)
    assert {"d_loss", "g_loss", "g_fake_ce", "loss", "fake_ce", "acc"} <= set(stats)


def test_dias_copycat_pass_directions():
    torch.manual_seed(0)
    m = build_method("dias", 3, {**TRAIN, "lr": 0.05})
    m.train_mode()
    x, y = _batch()
    net, cc = m.nets["net"], m.nets["copycat"]
    net.eval()
    pull0 = _same_noise(lambda: m.copycat_loss(x, y)[1])
    for _ in range(3):
        torch.manual_seed(5)
        l1, _ = m.copycat_loss(x, y)
        m.optimizers["copycat"].zero_grad()
        l1.backward()
        m.optimizers["copycat"].step()
    assert _same_noise(lambda: m.copycat_loss(x, y)[1]) < pull0  # the copycat imitates the classifier
    net.train()
    cc.eval()
    klu0 = _same_noise(lambda: m.simulated_loss(x, y)[0])
    for _ in range(3):
        torch.manual_seed(5)
        l2 = m.simulated_loss(x, y)[0]
        m.optimizers["net"].zero_grad()
        l2.backward()
        m.optimizers["net"].step()
    assert _same_noise(lambda: m.simulated_loss(x, y)[0]) < klu0
    stats = m.step("copycat", x, y)
    assert {"cc_loss", "pull", "loss", "klu", "acc"} <= set(stats)


def test_smooth_ce_ends():
    from oodflow.osr.losses import smooth_ce

    z, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    assert torch.allclose(smooth_ce(z, y, 0.0), torch.nn.functional.cross_entropy(z, y))
    uniform = -(torch.log_softmax(z, 1).mean(1)).mean()
    assert torch.allclose(smooth_ce(z, y, 1.0), uniform) and torch.allclose(
        smooth_ce(z, 1 - y % 2, 1.0), uniform
    )


def test_training_resumes_to_the_same_weights(tmp_path):
    from oodflow.osr.train import train

    arrays, _ = osr_data.build("mnist5k", "F1", 0, train_per_class=4, test_per_class=1)
    cfg = {"seed": 0, "benchmark": {"dataset": "mnist5k", "family": "F1", "trial": 0, "num_known": 6},
           "method": "dias", "method_args": METHOD_DEFAULTS["dias"],
           "train": {**TRAIN, "epochs": 2, "batch_size": 8, "augment": True}}  # fmt: skip
    straight, _ = train(cfg, arrays, device=torch.device("cpu"), checkpoint_path=tmp_path / "a.pt", log=print)
    train({**cfg, "train": {**cfg["train"], "epochs": 1}}, arrays, device=torch.device("cpu"),
          checkpoint_path=tmp_path / "b.pt", log=print)  # fmt: skip
    state = torch.load(tmp_path / "b.pt", weights_only=True)
    state["config"] = cfg  # as if the 2-epoch job had been killed after its first epoch
    torch.save(state, tmp_path / "b.pt")
    resumed, rows = train(
        cfg, arrays, device=torch.device("cpu"), checkpoint_path=tmp_path / "b.pt", log=print
    )
    assert len(rows) == 2
    for name in ("net", "copycat", "generator"):
        for a, b in zip(straight.nets[name].state_dict().values(), resumed.nets[name].state_dict().values()):
            assert torch.equal(a, b)


def test_an_arpl_cs_epoch_makes_two_classifier_updates_per_batch(tmp_path, monkeypatch):
    """ARPL's osr.py runs train_cs (D, G and classifier step per batch) and then the plain ARPL train
    pass every epoch: 24 images in batches of 8 give 3 D, 3 G and 3 + 3 classifier updates, in that order."""
    from oodflow.osr import methods
    from oodflow.osr.train import train

    calls, real_update = [], methods.update
    monkeypatch.setattr(methods, "update", lambda opt, loss: (calls.append(opt), real_update(opt, loss)))
    arrays, _ = osr_data.build("mnist5k", "F1", 0, train_per_class=4, test_per_class=1)
    cfg = {"seed": 0, "benchmark": {"dataset": "mnist5k", "family": "F1", "trial": 0, "num_known": 6},
           "method": "arpl_cs", "method_args": METHOD_DEFAULTS["arpl_cs"],
           "train": {**TRAIN, "epochs": 1, "batch_size": 8, "augment": False}}  # fmt: skip
    method, rows = train(
        cfg, arrays, device=torch.device("cpu"), checkpoint_path=tmp_path / "a.pt", log=print
    )
    names = {id(opt): name for name, opt in method.optimizers.items()}
    assert len(arrays["train_y"]) == 24
    assert [names[id(o)] for o in calls] == ["discriminator", "generator", "net"] * 3 + ["net"] * 3
    assert method.passes == ("confusing", "classifier")
    assert {"confusing_loss", "confusing_fake_loss", "confusing_d_loss", "classifier_loss"} <= set(rows[0])
    with pytest.raises(ValueError, match="ARPL\\+CS has no pass 'gan'"):
        method.step("gan", torch.zeros(2, 3, 32, 32), torch.zeros(2, dtype=torch.long))


# ------------------------------------------------------------------------------------------ report
def _record(method, trial, auroc, dataset="mnist5k"):
    msp = {
        "accuracy": 0.9,
        "AUROC": auroc,
        "AUPR-In": 0.5,
        "AUPR-Out": 0.5,
        "FPR@95": 0.5,
        "OSCR": 0.7,
        "F1": 0.6,
    }
    posthoc = {"energy": {"AUROC": 0.8, "AUPR-In": 0.1, "AUPR-Out": 0.2, "FPR@95": 0.3}}
    return {
        "dataset": dataset,
        "family": "F1",
        "trial": trial,
        "method": method,
        "msp": msp,
        "posthoc": posthoc,
    }


def test_tables_and_long_form():
    records = [_record("dias", 0, 0.8), _record("dias", 1, 0.9), _record("softmax", 0, 0.7, "cifar10")]
    header, rows = table(records, "AUROC", {"metrics": {"AUROC": {"dias": {"cifar10": 85.0}}}})
    assert header == ["Split", "Method", "CIFAR10", "MNIST-5k (embedded)"]
    assert rows[0] == ["F1", "dias", "-", "85.0 ± 5.0 (2)"] and rows[1] == ["F1", "softmax", "70.0 (1)", "-"]
    assert rows[2] == ["paper", "dias (reported)", "85.0", "-"]
    long = long_form(records)
    assert tuple(long[0]) == COLUMNS == SPINE_COLUMNS  # joinable with the spine's metrics.csv
    assert any(r["benchmark"] == "osr-F1-mnist5k" and r["run"] == "dias-trial1" and r["score"] == "msp"
               and r["ood_set"] == "unknown" and r["metric"] == "OSCR" for r in long)  # fmt: skip


def test_arpl_is_scored_with_its_max_reciprocal_point_logit_and_both_protocols_are_reported():
    """ARPL's test scores AUROC and OSCR with max_k z_k of the raw reciprocal-point logits, DIAS with
    max softmax(z / T): re-derived with sklearn and the OSCR definition on random logits."""
    from sklearn.metrics import roc_auc_score

    from oodflow.osr import PROTOCOL_SCORES
    from oodflow.osr.evaluate import osr_metrics
    from oodflow.scores import Cache

    assert set(PROTOCOL_SCORES) == set(OSR_METHODS.names())
    assert PROTOCOL_SCORES["arpl"] == PROTOCOL_SCORES["arpl_cs"] == "maxlogit"
    assert PROTOCOL_SCORES["dias"] == PROTOCOL_SCORES["softmax"] == "msp"
    rng = np.random.default_rng(0)
    # logit scale varies per sample, so the max logit and the MSP rank samples differently
    zk = rng.normal(size=(40, 4)) * rng.uniform(0.2, 3.0, size=(40, 1)) + np.eye(4)[np.arange(40) % 4] * 1.5
    zu = rng.normal(size=(30, 4)) * rng.uniform(0.2, 3.0, size=(30, 1))
    yk = np.arange(40) % 4
    known, unknown = Cache(zk, np.zeros((40, 2)), yk), Cache(zu, np.zeros((30, 2)), np.zeros(30, np.int64))
    ours, curve = osr_metrics(known, unknown, temp=2.0, score="maxlogit")
    mk, mu = zk.max(1), zu.max(1)
    labels = np.r_[np.ones(40), np.zeros(30)]
    assert ours["AUROC"] == pytest.approx(roc_auc_score(labels, np.r_[mk, mu]), abs=1e-12)
    assert ours["OSCR"] == pytest.approx(oscr(mk, zk.argmax(1) == yk, mu), abs=1e-12)
    assert "F1" not in ours  # the open-set F1 is defined by the MSP threshold
    with_msp, _ = osr_metrics(known, unknown, temp=2.0, score="msp")
    soft = lambda z: (np.exp(z / 2.0) / np.exp(z / 2.0).sum(1, keepdims=True)).max(1)  # noqa: E731
    assert with_msp["AUROC"] == pytest.approx(roc_auc_score(labels, np.r_[soft(zk), soft(zu)]), abs=1e-12)
    assert abs(with_msp["AUROC"] - ours["AUROC"]) > 1e-3 and "F1" in with_msp
    assert with_msp["accuracy"] == ours["accuracy"]
    with pytest.raises(ValueError, match="unknown OSR protocol score 'energy'; valid: msp, maxlogit"):
        osr_metrics(known, unknown, score="energy")


def test_tables_compare_each_method_under_its_own_protocol_and_long_form_has_both():
    arpl = _record("arpl", 0, 0.6)
    arpl["maxlogit"] = {**arpl["msp"], "AUROC": 0.75, "OSCR": 0.72}
    del arpl["maxlogit"]["F1"]
    arpl["protocol"] = "maxlogit"
    records = [arpl, _record("dias", 0, 0.8)]
    _, rows = table(records, "AUROC", {"metrics": {"AUROC": {"arpl": {"mnist5k": 74.0}}}})
    assert rows == [
        ["F1", "arpl", "75.0 (1)"],
        ["F1", "dias", "80.0 (1)"],
        ["F1", "arpl [msp]", "60.0 (1)"],
        ["paper", "arpl (reported)", "74.0"],
    ]
    _, f1_rows = table(records, "F1")
    assert f1_rows == [["F1", "arpl", "60.0 (1)"], ["F1", "dias", "60.0 (1)"]]  # F1: MSP threshold only
    long = {(r["run"], r["score"], r["metric"]): r["value"] for r in long_form(records)}
    assert long["arpl-trial0", "maxlogit", "AUROC"] == 0.75 and long["arpl-trial0", "msp", "AUROC"] == 0.6
    assert ("dias-trial0", "maxlogit", "AUROC") not in long  # an old record has the MSP block only


# ------------------------------------------------------------------------------------------ config
def _osr(**section):
    return {"osr": {"datasets": ["mnist5k"], **section}}


def test_osr_section_defaults_are_the_paper():
    osr = validate(_osr())["osr"]
    assert osr["train"] == {"epochs": 200, "batch_size": 64, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
                            "weight_decay": 0.0001, "milestones": [60, 120, 180, 240], "gamma": 0.1,
                            "width": 1.0, "img_size": 32, "augment": True}  # fmt: skip
    assert osr["methods"]["dias"] == METHOD_DEFAULTS["dias"] and osr["splits"] == ["F1"]
    assert osr["trials"] == [0, 1, 2, 3, 4] and osr["evaluation"]["smoothing"] == 0.5
    assert set(osr["scores"]) <= set(OSR_SCORES)


@pytest.mark.parametrize(
    ("section", "words"),
    [
        (
            {"methods": {"dais": {}}},
            "osr.methods: unknown OSR method 'dais'; valid names: arpl, arpl_cs, dias, softmax",
        ),
        (
            {"methods": {"dias": {"betta": 0.1}}},
            "osr.methods.dias.betta: method 'dias' has no parameter 'betta'",
        ),
        ({"scores": {"odin": {}}}, "osr.scores.odin: not a score of an OSR feature cache"),
        ({"scores": {"knn": {"kk": 3}}}, "osr.scores.knn.kk"),
        ({"train": {"img_size": 64}, "methods": {"dias": {}}}, "osr.train.img_size"),
        ({"datasets": ["cifar11"]}, "osr.datasets.0"),
        ({"trials": [5]}, "osr.trials.0"),
        ({"reference": "no/such/file.yaml"}, "osr.reference"),
        ({"recipes": {"arpl": "arpl"}, "methods": {"dias": {}}}, "osr.recipes.arpl: not a method of osr"),
        ({"recipes": {"dias": "adam"}, "methods": {"dias": {}}}, "osr.recipes.dias"),
    ],
)
def test_osr_config_errors_name_the_key(section, words):
    with pytest.raises(ConfigError, match="config error at " + words.replace("(", r"\(").replace(")", r"\)")):
        validate(_osr(**section))


def test_split_tables_ship_as_package_data():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "splits.json" in project["tool"]["setuptools"]["package-data"]["oodflow.osr"]
    assert SPLITS_PATH.parent == Path(osr_data.__file__).parent  # read beside the code, not from shared/


def _indexed_mnist(tmp_path: Path) -> dict[str, str]:
    """A fake catalog mnist whose image i has every pixel = i (train 7, test 5 per digit)."""

    def split(n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
        i = np.arange(n)
        return (i + offset).astype(np.uint8)[:, None, None, None] * np.ones((1, 28, 28, 1), np.uint8), i % 10

    return {"mnist": _prepared(tmp_path, "mnist", {"train": split(70, 0), "test": split(50, 100)})}


def test_catalog_osr_per_class_cap_is_a_seeded_subset_in_source_order(tmp_path):
    """Issue 22 item 6: osr.per_class caps each class of the known train, known test and unknown
    images; the draw is seeded, keeps the source's order, and nothing is capped by default."""
    prepared = _indexed_mnist(tmp_path)
    t = task("mnist", "F1", 0)
    full, _ = osr_data.build("mnist", "F1", 0, prepared=prepared)
    assert len(full["train_y"]) == 7 * len(t.known) and len(full["unknown_y"]) == 5 * len(t.unknown)
    caps = {"train": 3, "test": 2}
    a, meta = osr_data.build("mnist", "F1", 0, prepared=prepared, seed=1, per_class=caps)
    b, _ = osr_data.build("mnist", "F1", 0, prepared=prepared, seed=1, per_class=caps)
    c, _ = osr_data.build("mnist", "F1", 0, prepared=prepared, seed=2, per_class=caps)
    assert meta["counts"] == {
        "train": 3 * len(t.known),
        "test": 2 * len(t.known),
        "unknown": 2 * len(t.unknown),
    }
    assert meta["per_class"] == {"seed": 1, "train": 3, "test": 2}
    for split in ("train", "test", "unknown"):
        index = a[f"{split}_x"][:, 0, 0, 0].astype(int) % 100  # the source index of every kept image
        assert list(index) == sorted(index) and set(index) <= set(full[f"{split}_x"][:, 0, 0, 0] % 100)
        assert np.bincount(a[f"{split}_y"]).max() == caps["train" if split == "train" else "test"]
        np.testing.assert_array_equal(a[f"{split}_x"], b[f"{split}_x"])
    assert not all(np.array_equal(a[k], c[k]) for k in ("train_x", "test_x", "unknown_x"))  # seeded
    for x, y in zip(a["train_x"], a["train_y"]):
        assert int(x[16, 16, 0]) % 10 == t.known[y]  # the label still matches its image
    only_train, _ = osr_data.build("mnist", "F1", 0, prepared=prepared, per_class={"train": 1, "test": None})
    assert len(only_train["train_y"]) == len(t.known)
    np.testing.assert_array_equal(only_train["unknown_x"], full["unknown_x"])


def test_per_class_cap_config_is_validated_and_leaves_uncapped_runs_as_they_were():
    from oodflow import provenance
    from oodflow.osr import workflow

    base = {"runs": {}, "scores": {"msp": {}}, "osr": {"datasets": ["mnist"], "trials": [0]}}
    cfg = validate(copy.deepcopy(base))
    assert cfg["osr"]["per_class"] == {"train": None, "test": None}
    assert "per_class" not in workflow.data_config(cfg, "mnist", "F1", 0)
    assert "per_class" not in provenance.protocol(cfg, "osr")
    capped = validate({**copy.deepcopy(base), "osr": {**base["osr"], "per_class": {"train": 50}}})
    assert workflow.data_config(capped, "mnist", "F1", 0)["per_class"] == {"train": 50, "test": None}
    assert provenance.protocol(capped, "osr")["per_class"] == {"train": 50}
    assert "per_class" not in workflow.data_config(capped, "mnist5k", "F1", 0)  # embedded: its own sizes
    for bad, key in (({"train": 0}, "osr.per_class.train"), ({"tset": 5}, "osr.per_class")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            validate({**copy.deepcopy(base), "osr": {**base["osr"], "per_class": bad}})


class _Recorder(torch.nn.Module):
    """Wraps a network and keeps a copy of every input it is called with."""

    def __init__(self, net):
        super().__init__()
        self.net, self.inputs = net, []
        if hasattr(net, "nz"):
            self.nz = net.nz  # the latent size of a generator

    def forward(self, x, *args):
        self.inputs.append(x.detach().clone())
        return self.net(x, *args)


@pytest.mark.parametrize("name", ["arpl_cs", "dias"])
@pytest.mark.parametrize("reuse", [True, False])
def test_the_generator_step_sees_the_fakes_the_discriminator_saw(name, reuse):
    """ARPL's train_cs and DIAS's train_gan draw one G(z) per batch: D is trained on it (detached) and
    the G step scores the same fakes through the updated D; the classifier step then draws its own.
    So with reuse_fakes the D calls per batch are (x, fake, fake) and G runs twice; without, three
    different inputs and three G runs."""
    torch.manual_seed(0)
    m = build_method(name, 3, TRAIN, reuse_fakes=reuse)
    m.train_mode()
    D, G = _Recorder(m.nets["discriminator"]), _Recorder(m.nets["generator"])
    m.nets["discriminator"], m.nets["generator"] = D, G
    x, y = _batch()
    m.step("confusing" if name == "arpl_cs" else "gan", x, y)
    real, d_fake, g_fake = D.inputs
    assert torch.equal(real, x)
    assert torch.equal(d_fake, g_fake) is reuse
    assert len(G.inputs) == (2 if reuse else 3)  # latents: (D and G step), classifier step
    assert not torch.equal(G.inputs[0], G.inputs[-1])  # the classifier's fakes are fresh in both


@pytest.mark.parametrize("reuse", [True, False])
def test_spine_dias_generator_step_sees_the_discriminators_fakes(reuse):
    from oodflow.methods import build_method as build_spine_method
    from oodflow.models import build_model

    torch.manual_seed(0)
    model = build_model("small_cnn", num_classes=3, in_channels=1)
    m = build_spine_method("dias", reuse_fakes=reuse)
    m.setup(model, 3, input_shape=(1, 28, 28))
    D = _Recorder(m.nets["discriminator"])
    m.nets["discriminator"] = D
    x, y = torch.rand(6, 1, 28, 28), torch.arange(6) % 3
    m.gan_step(model, x, y)
    assert torch.equal(D.inputs[1], D.inputs[2]) is reuse


def test_recipes_give_each_method_its_papers_schedule():
    """ARPL's osr.py: 100 epochs, SGD(0.1, momentum 0.9, wd 1e-4), MultiStepLR([30, 60, 90, 120]) x 0.1,
    Adam(0.001) without weight decay on Tiny-ImageNet; DIAS's --optimizer adam branch: Adam(0.001),
    no weight decay, MultiStepLR([max_epoch // 2]). Methods without a recipe keep osr.train."""
    from oodflow.osr import RECIPES
    from oodflow.osr.workflow import run_config

    cfg = validate(_osr(datasets=["cifar10", "tinyimagenet"], methods={"arpl": {}, "dias": {}, "softmax": {}},
                        recipes={"arpl": "arpl", "dias": "dias_adam"}))  # fmt: skip
    plain = run_config(cfg, "cifar10", "F1", 0, "softmax")["train"]
    assert plain == cfg["osr"]["train"]
    arpl = run_config(cfg, "cifar10", "F1", 0, "arpl")
    expected = {"epochs": 100, "batch_size": 64, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
                "weight_decay": 0.0001, "milestones": [30, 60, 90, 120], "gamma": 0.1}  # fmt: skip
    assert {k: arpl["train"][k] for k in expected} == expected
    m = build_method("arpl", 6, {**arpl["train"], "width": 0.125}, **arpl["method_args"])
    opt, sched = m.optimizers["net"], m.schedulers["net"]
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["weight_decay"] == 0.0001
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()  # no gradients: a no-op, in the order the scheduler expects
        sched.step()
    assert [lrs[e] for e in (0, 29, 30, 59, 60, 90)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 1e-4])
    tiny = run_config(cfg, "tinyimagenet", "F1", 0, "arpl")["train"]
    assert (tiny["optimizer"], tiny["lr"], tiny["weight_decay"]) == ("adam", 0.001, 0.0)
    dias = run_config(cfg, "cifar10", "F1", 0, "dias")
    m = build_method("dias", 6, {**dias["train"], "width": 0.125}, **dias["method_args"])
    for name in ("net", "copycat"):
        opt, sched = m.optimizers[name], m.schedulers[name]
        assert isinstance(opt, torch.optim.Adam) and opt.defaults["weight_decay"] == 0.0
        lrs = []
        for _ in range(200):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert (lrs[0], lrs[99], lrs[100], lrs[199]) == pytest.approx((1e-3, 1e-3, 1e-4, 1e-4))
    # a recipe is never longer than osr.train (the smoke's one epoch)
    short = validate(_osr(methods={"arpl": {}}, recipes={"arpl": "arpl"}, train={"epochs": 3}))
    assert run_config(short, "cifar10", "F1", 0, "arpl")["train"]["epochs"] == 3
    schema_enum = __import__("oodflow.config", fromlist=["load_schema"]).load_schema()
    osr_props = schema_enum["properties"]["osr"]["properties"]
    assert tuple(osr_props["recipes"]["additionalProperties"]["enum"]) == RECIPES
