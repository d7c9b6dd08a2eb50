"""The OSR (ARPL, DIAS) and multi-label (EDGE) papers' objectives as spine methods, and the spine's
JointEnergy score: closed forms on hand-made inputs, where gradients and updates go, bit-exact
resumption, and the feature cache's logits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from oodflow import features, training
from oodflow.methods import HEADLESS_METHODS, METHODS, build_method
from oodflow.methods.open_set import DIAS, fresh_copy
from oodflow.models import build_model
from oodflow.models.base import OODNet
from oodflow.multilabel.objectives import edge_terms
from oodflow.multilabel.scores import JointEnergy as MLJointEnergy
from oodflow.osr.losses import feature_pull, simulated_term, smooth_ce
from oodflow.scores import Cache, build_score

torch.set_num_threads(1)


class Identity(OODNet):
    """``features(x) = x`` (D = 2) and a head of preset weights."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(2, 2)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _arpl_on_hand_made_points(weight_pl: float = 0.1):
    method = build_method("arpl", weight_pl=weight_pl)
    method.setup(Identity(), 2)
    with torch.no_grad():
        method.criterion.points.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        method.criterion.radius.zero_()
    return method


# --------------------------------------------------------------------------------------- ARPL
def test_arpl_logits_and_loss_on_hand_made_points():
    method = _arpl_on_hand_made_points()
    g = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    # z_k = |g - P_k|^2 / D - g.P_k: row 0: (0 - 1, 1 - 0); row 1: ((1 + 4)/2 - 0, 1/2 - 2)
    expected = torch.tensor([[-1.0, 1.0], [2.5, -1.5]])
    out = method.infer(Identity(), g)
    assert torch.allclose(out["logits"], expected) and torch.equal(out["features"], g)
    assert torch.allclose(method.predict(Identity(), g), expected)
    loss, logits = method(Identity(), g, torch.tensor([0, 1]))
    ce = ((1 + math.log(math.exp(-1) + math.e)) + (1.5 + math.log(math.exp(2.5) + math.exp(-1.5)))) / 2
    margin = (max(0.0, 0.0 - 0.0 + 1.0) + max(0.0, 0.5 - 0.0 + 1.0)) / 2  # mean (g - P_y)^2 = 0, 1/2
    assert float(loss.detach()) == pytest.approx(ce + 0.1 * margin, rel=1e-6)
    assert torch.allclose(logits, expected)


def test_arpl_trains_points_and_radius_with_the_model_and_ignores_the_head():
    method = _arpl_on_hand_made_points()
    assert [p.shape for p in method.parameters()] == [(2, 2), (1,)]
    model = Identity()
    loss, _ = method(model, torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    loss.backward()
    assert model.head.weight.grad is None  # the head takes no part
    assert method.criterion.points.grad is not None and method.criterion.radius.grad is not None


def test_extraction_gives_the_methods_logits_and_head_logits_otherwise():
    torch.manual_seed(0)
    model = build_model("small_cnn", 10, 1, width=0.25).eval()
    x = torch.randn(5, 1, 28, 28).numpy()
    plain = features.extract_outputs(model, x, batch_size=5)  # one batch: equal to one forward pass
    with torch.no_grad():
        f = model.features(torch.from_numpy(x))
        assert np.array_equal(plain["logits"], model.head(f).numpy())
    assert sorted(plain) == ["features", "logits"]
    arpl = build_method("arpl")
    arpl.setup(model, 10)
    out = features.extract_outputs(model, x, batch_size=5, method=arpl)
    with torch.no_grad():
        assert np.allclose(out["logits"], arpl.criterion.logits(f).numpy(), atol=1e-6)
    assert np.array_equal(out["features"], plain["features"])
    assert not np.allclose(out["logits"], plain["logits"])
    assert sorted(out) == ["features", "logits"]


def test_prototype_extraction_is_the_embedding_and_nearest_prototype_classifier():
    torch.manual_seed(0)
    model = build_model("small_cnn", 10, 1, width=0.25).eval()
    palm = build_method("palm", proj_dim=8, n_proto=2)
    palm.setup(model, 10)
    palm.train(False)
    x = torch.randn(5, 1, 28, 28)
    out = features.extract_outputs(model, x.numpy(), batch_size=5, method=palm)
    with torch.no_grad():
        assert np.array_equal(out["embeddings"], palm.embed(model, x).numpy())
        assert np.array_equal(out["logits"], palm.predict(model, x).numpy())
        assert np.array_equal(out["features"], model.features(x).numpy())
    assert palm.cache_arrays()["prototypes"].shape == (20, 8)


def test_headless_methods_are_those_that_give_their_logits():
    assert HEADLESS_METHODS == {n for n in METHODS.names() if hasattr(METHODS.get(n), "infer")}
    assert {"palm", "adapt", "arpl"} <= HEADLESS_METHODS and "dias" not in HEADLESS_METHODS


# --------------------------------------------------------------------------------------- EDGE
def test_edge_on_one_hot_targets_is_bce_plus_oe_and_gap_terms():
    torch.manual_seed(0)
    model = nn.Linear(4, 3).requires_grad_(False)  # values only here
    x, y, x_aux = torch.randn(5, 4), torch.tensor([0, 2, 1, 1, 0]), torch.randn(6, 4)
    method = build_method("edge", alpha=0.0, beta=0.0, k=2)
    loss, logits = method(model, x, y, x_aux)
    onehot = torch.zeros(5, 3)
    onehot[torch.arange(5), y] = 1.0
    assert torch.equal(logits, model(x))
    assert float(loss) == pytest.approx(float(F.binary_cross_entropy_with_logits(model(x), onehot)), rel=1e-6)

    method = build_method("edge", alpha=0.5, beta=0.2, k=2, m=1.0, start_epoch=1)
    method.set_epoch(0, seed=0)
    zi, zo = model(x), model(x_aux)
    bce = F.binary_cross_entropy_with_logits(zi, onehot)
    conf = F.softplus(zo).mean()
    assert float(method(model, x, y, x_aux)[0]) == pytest.approx(float(bce + 0.5 * conf), rel=1e-6)
    method.set_epoch(1, seed=0)
    s_in, s_out = F.softplus(zi).sum(1), F.softplus(zo).sum(1)
    tail = s_in.sort().values[:2]  # the k = 2 lowest JointEnergies of the ID batch
    gap = torch.stack([torch.relu(so - t + 1.0) for so in s_out for t in tail]).mean()
    expected = bce + 0.5 * conf + 0.2 * gap
    assert float(method(model, x, y, x_aux)[0]) == pytest.approx(float(expected), rel=1e-6)
    assert float(edge_terms(zi, onehot, zo, 2, 1.0)["gap"]) == pytest.approx(float(gap), rel=1e-6)


def test_edge_needs_outliers_and_a_positive_aux_batch():
    with pytest.raises(ValueError, match="auxiliary outliers"):
        build_method("edge")(nn.Linear(2, 2), torch.zeros(1, 2), torch.tensor([0]))
    with pytest.raises(ValueError, match="aux_batch_size"):
        build_method("edge", aux_batch_size=0)


def test_joint_energy_score_closed_form_finite_and_equal_to_the_multilabel_one():
    logits = np.array([[0.0, 0.0, 0.0], [1e4, -1e4, 0.0], [-50.0, -60.0, -70.0]])
    got = build_score("joint_energy").score(Cache(logits, np.zeros((3, 1)), np.zeros(3, np.int64)))
    assert got[0] == pytest.approx(3 * math.log(2))
    assert got[1] == pytest.approx(1e4 + math.log(2))  # finite where log(1 + exp(z)) overflows
    assert got[2] == pytest.approx(math.exp(-50) + math.exp(-60) + math.exp(-70), rel=1e-9)
    rng = np.random.default_rng(0)
    z = rng.normal(scale=8.0, size=(50, 10))
    cache = Cache(z, np.zeros((50, 1)), np.zeros(50, np.int64))
    np.testing.assert_allclose(
        build_score("joint_energy").score(cache), MLJointEnergy().score(cache), rtol=1e-12
    )
    np.testing.assert_allclose(
        build_score("joint_energy").score(cache), F.softplus(torch.from_numpy(z)).sum(1).numpy(), rtol=1e-9
    )  # (torch's softplus returns z itself above z = 20)


# --------------------------------------------------------------------------------------- DIAS
def test_dias_shared_terms_closed_form():
    a, b = torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)
    assert float(feature_pull((a, a), (b, 3 * b))) == pytest.approx(0.5 * (1.0 + 3.0))
    z, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
    got = simulated_term(z, 2 * z, 3 * z, y, 0.5, 1.0)
    expected = (smooth_ce(z, y, 0.5) + smooth_ce(2 * z, y, 0.5) + smooth_ce(3 * z, y, 1.0)) / 3
    assert float(got) == pytest.approx(float(expected))
    assert float(smooth_ce(z, y, 1.0)) == pytest.approx(float(-F.log_softmax(z, 1).mean(1).mean()))


def _dias(model, **kwargs) -> DIAS:
    method = build_method("dias", mean=[0.5], std=[0.25], **kwargs)
    method.setup(model, 10, input_shape=(1, 28, 28))
    return method


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before, module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_dias_step_updates_its_own_modules_and_returns_the_classifier_loss():
    torch.manual_seed(0)
    model = build_model("small_cnn", 10, 1, width=0.25)
    method = _dias(model)
    assert list(method.parameters()) == []  # the loop's optimiser gets the model's only
    nets = method.nets
    before = {name: _snapshot(net) for name, net in nets.items()}
    model_before = _snapshot(model)
    x, y = torch.randn(8, 1, 28, 28), torch.arange(8) % 10
    loss, logits = method(model, x, y)
    for name, net in nets.items():
        assert _changed(before[name], net), name  # G, D and the copycat stepped
    assert not _changed(model_before, model)  # the model is the loop's to step
    assert model.training and nets["copycat"].training  # modes restored
    own = [p for net in nets.values() for p in net.parameters()]
    grads = torch.autograd.grad(loss, [*model.parameters(), *own], allow_unused=True)
    assert all(g is not None for g in grads[: len(list(model.parameters()))])
    assert all(g is None for g in grads[len(list(model.parameters())) :])  # nothing flows into them
    assert logits.shape == (8, 10) and set(method.last) >= {"d_loss", "g_loss", "cc_loss", "pull", "klu"}


def test_dias_classifier_loss_is_ce_plus_both_fake_terms():
    torch.manual_seed(0)
    model = build_model("small_cnn", 10, 1, width=0.25)
    x, y = torch.randn(6, 1, 28, 28), torch.arange(6)
    method = _dias(model, beta=0.0, fake_ratio=0.0)
    loss, logits = method(model, x, y)
    assert float(loss.detach()) == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-6)
    method = _dias(model, beta=0.0, fake_ratio=0.3)
    method.gan_step(model, x, y)
    method.copycat_step(model, x, y)
    klu = method.simulated(model, x, y).detach()
    cc = method.nets["copycat"].eval()
    early, middle, late = cc.feature_blocks()
    with torch.no_grad():
        f1c = early(x)
        f2c = middle(f1c)
        gc = late(f2c)
        _, m_mid, m_late = model.feature_blocks()
        hard1, hard2, easy = model.head(m_late(m_mid(f1c))), model.head(m_late(f2c)), model.head(gc)
    expected = (smooth_ce(hard1, y, 0.5) + smooth_ce(hard2, y, 0.5) + smooth_ce(easy, y, 1.0)) / 3
    assert float(klu) == pytest.approx(float(expected), rel=1e-6)


def test_dias_generator_samples_are_normalised_model_inputs():
    torch.manual_seed(0)
    method = _dias(build_model("small_cnn", 10, 1, width=0.25))
    G = method.nets["generator"]
    z = torch.randn(3, G.nz, 1, 1)
    with torch.no_grad():
        raw, fake = G.net(z), G(z)
    assert torch.allclose(fake, (raw - 0.5) / 0.25) and fake.shape == (3, 1, 28, 28)
    assert 0.0 <= float(raw.min()) and float(raw.max()) <= 1.0


def test_dias_needs_the_input_shape_and_feature_blocks():
    with pytest.raises(ValueError, match="input_shape"):
        build_method("dias").setup(build_model("small_cnn", 10, 1), 10)
    with pytest.raises(NotImplementedError, match="DIAS"):
        build_method("dias").setup(Identity(), 2, input_shape=(1, 28, 28))
    with pytest.raises(ValueError, match="both mean and std"):
        build_method("dias", mean=[0.5])


def test_fresh_copy_has_the_architecture_and_new_weights():
    torch.manual_seed(0)
    model = build_model("small_cnn", 10, 1, width=0.25)
    twin = fresh_copy(model)
    assert [k for k in twin.state_dict()] == [k for k in model.state_dict()]
    assert all(not torch.equal(a, b) for a, b in zip(twin.parameters(), model.parameters()) if a.dim() > 1)


# --------------------------------------------------------------------------------------- resume
def _config(method: str, method_args: dict, epochs: int) -> dict:
    return {
        "seed": 0,
        "benchmark": {"name": "mnist5k"},
        "run": {
            "model": "small_cnn",
            "model_args": {"width": 0.25},
            "method": method,
            "method_args": method_args,
            "optimizer": "adam",
            "lr": 0.001,
            "weight_decay": 0.0,
            "scheduler": "cosine",
            "epochs": epochs,
            "batch_size": 16,
            "augment": True,
        },
    }


class _Killed(Exception):
    pass


def _equal_nested(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal_nested(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal_nested(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize(
    "method,args",
    [("dias", {"mean": [0.13], "std": [0.31], "gan_width": 4, "latent_dim": 8}), ("arpl", {})],
)
def test_killed_run_resumes_bit_for_bit_with_the_methods_state(tmp_path, method, args):
    gen = torch.Generator().manual_seed(0)
    split = training.Split(torch.randn(32, 1, 28, 28, generator=gen), torch.arange(10).repeat(4)[:32])
    kw = dict(num_classes=10, device=torch.device("cpu"))
    cfg = _config(method, args, 3)
    full, rows = training.train(
        cfg, split, split, checkpoint_path=tmp_path / "a.pt", log=lambda m: None, **kw
    )

    def kill_in_epoch_3(msg):  # the loop logs an epoch's row before saving its checkpoint
        if msg.startswith("epoch=3"):
            raise _Killed

    ck = tmp_path / "b.pt"
    with pytest.raises(_Killed):
        training.train(cfg, split, split, checkpoint_path=ck, log=kill_in_epoch_3, **kw)
    state = torch.load(ck, weights_only=True)  # the method's state loads safely
    assert state["epoch"] == 1 and "method" in state
    resumed, rows2 = training.train(cfg, split, split, checkpoint_path=ck, log=lambda m: None, **kw)
    assert rows2 == rows
    for k, v in full.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k
    assert _equal_nested(full.method_state, resumed.method_state)
    if method == "dias":
        assert set(full.method_state["optimizers"]) == {"copycat", "generator", "discriminator"}
        # the run without the kill differs from one whose method state were not restored
        assert not _equal_nested(full.method_state, state["method"])


# --------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "scores,words",
    [(None, "trains no classifier head"), (["msp", "odin"], "odin need a trained classifier head")],
)
def test_arpl_runs_list_scores_that_need_no_head(test_config, scores, words):
    from oodflow.config import ConfigError, validate

    config = {**test_config, "runs": {**test_config["runs"]}}
    config["runs"]["rp"] = {**test_config["runs"]["tiny"], "method": "arpl", "init_from": "tiny"}
    if scores is not None:
        config["runs"]["rp"]["scores"] = scores
    with pytest.raises(ConfigError, match=rf"runs\.rp\.scores.*{words}"):
        validate(config)


def test_default_config_trains_the_three_objectives_from_the_baseline(default_config):
    from oodflow import steps
    from oodflow.config import validate

    cfg = validate(default_config)
    for run, method in (("arpl", "arpl"), ("dias", "dias"), ("edge", "edge")):
        assert cfg["runs"][run]["method"] == method and cfg["runs"][run]["init_from"] == "baseline"
    assert "aux_size" in steps.run_config(cfg, "edge")["benchmark"]  # EDGE trains on the aux pool
    assert steps.run_config(cfg, "dias")["run"]["method_args"]["mean"] == [0.1307]  # fakes are normalised
    assert "arpl" not in cfg["adversarial"]["runs"]


def test_inference_method_is_rebuilt_for_headless_methods_only():
    from oodflow import steps

    torch.manual_seed(0)
    model = build_model("small_cnn", 10, 1, width=0.25)
    assert steps._inference_method(model, {"method": "dias", "method_args": {}}, None, 10, "cpu") is None
    trained = build_method("arpl")
    trained.setup(model, 10)
    run = {"method": "arpl", "method_args": {}}
    rebuilt = steps._inference_method(model, run, trained.state_dict(), 10, "cpu")
    assert torch.equal(rebuilt.criterion.points, trained.criterion.points) and not rebuilt.criterion.training
    with pytest.raises(ValueError, match="needs the method's trained state"):
        steps._inference_method(model, run, None, 10, "cpu")
