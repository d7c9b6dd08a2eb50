"""PALM / ADAPT: each step of the multi-prototype loss against its closed form or a naive loop,
the two-view training, and the distance scores they are evaluated with."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.neighbors import NearestNeighbors

from oodflow import training
from oodflow.config import ConfigError, load_schema, validate
from oodflow.methods import build_method
from oodflow.methods import prototypes as P
from oodflow.methods.views import POLICIES, make_view
from oodflow.models import build_model
from oodflow.neighbours import kth_sqdist
from oodflow.scores import Cache, build_score


def _unit(n, d, seed=0):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


# --------------------------------------------------------------------------- loss steps
def test_sinkhorn_rows_sum_to_one_and_columns_approach_n_over_k():
    sim = _unit(12, 8) @ _unit(5, 8, seed=1).T
    q = P.sinkhorn(sim, epsilon=0.05, iterations=3)
    assert q.shape == (12, 5) and (q >= 0).all()
    torch.testing.assert_close(q.sum(1), torch.ones(12))  # exact after the last (column) step
    q_many = P.sinkhorn(sim, epsilon=0.5, iterations=200)
    torch.testing.assert_close(q_many.sum(0), torch.full((5,), 12 / 5), atol=1e-3, rtol=0)


def test_sinkhorn_zero_iterations_is_the_scaled_softmax_mass():
    sim = torch.tensor([[0.0, 0.1], [0.2, -0.3]])
    q = P.sinkhorn(sim, epsilon=0.1, iterations=0)
    e = torch.exp(sim / 0.1)
    torch.testing.assert_close(q, e / e.sum() * 2)


@pytest.mark.parametrize("normalize_columns", [False, True])
def test_topk_mask_keeps_k_entries_of_the_right_class(normalize_columns):
    num_classes, n_proto, k = 3, 4, 2
    labels = P.prototype_labels(num_classes, n_proto)
    assert labels.tolist() == [0, 1, 2] * 4
    y = torch.tensor([0, 2, 1, 2, 0])
    same = (y[:, None] == labels[None, :]).float()
    q = torch.rand(5, 12, generator=torch.Generator().manual_seed(3)) + 0.01
    w, idx = P.update_weights(q, same, k, normalize_columns)
    for i in range(5):
        kept = torch.nonzero(w[i]).flatten()
        assert len(kept) == k and (labels[kept] == y[i]).all()
        # the kept ones are the k largest same-class assignments
        expected = torch.topk(q[i] * same[i], k).indices
        assert set(kept.tolist()) == set(expected.tolist()) == set(idx[i].tolist())
    if normalize_columns:  # PALM: each used prototype's weights sum to 1
        used = w.sum(0) > 0
        torch.testing.assert_close(w.sum(0)[used], torch.ones(int(used.sum())))
    else:  # ADAPT: each sample's weights sum to 1
        torch.testing.assert_close(w.sum(1), torch.ones(5))


def test_ema_update_and_alignment_closed_form():
    protos = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    z = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    w = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # prototype 2 gets no sample
    m = 0.9
    new, align = P.ema_update(protos, z, w, m)
    p0 = torch.tensor([0.9 + 0.1 * 0.6, 0.1 * 0.8])
    torch.testing.assert_close(new[0], p0 / p0.norm())
    torch.testing.assert_close(new[1], torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(new[2], torch.tensor([1.0, 0.0]))
    # cos = 0.6, 1.0 and 0 (no samples): a = 1.6 / 3
    assert float(align) == pytest.approx(1.6 / 3)
    assert P.adaptive_temperature(align, 0.4, 0.5) == pytest.approx(0.4 * (1 + 0.5 - 1.6 / 3))
    assert P.adaptive_temperature(0.5) == pytest.approx(0.4)


def test_hard_negative_weights_are_the_power_of_negative_logits():
    logits = F.softplus(torch.randn(4, 6, generator=torch.Generator().manual_seed(0)))
    same = torch.zeros(4, 6)
    same[torch.arange(4), torch.tensor([0, 3, 5, 1])] = 1
    w = P.hard_negative_weights(logits, same, beta=0.15)
    expected = torch.where(same.bool(), torch.ones_like(logits), (logits + 1e-10) ** 0.15)
    torch.testing.assert_close(w, expected)
    assert not w.requires_grad


def _naive_mle(logits, q, same, idx, omega):
    n, k = logits.shape
    total = 0.0
    for i in range(n):
        wts = [float(q[i, j] * same[i, j]) if j in idx[i].tolist() else 0.0 for j in range(k)]
        s = sum(wts)
        pos = sum(wts[j] / s * float(logits[i, j]) for j in range(k)) if s > 0 else 0.0
        neg = math.log(sum(math.exp(float(omega[i, j] * logits[i, j])) for j in range(k)))
        total += pos - neg
    return -total / n


@pytest.mark.parametrize("hard_negatives", [False, True])
def test_mle_loss_equals_a_naive_loop(hard_negatives):
    gen = torch.Generator().manual_seed(1)
    labels = P.prototype_labels(2, 3)
    y = torch.tensor([0, 1, 1, 0])
    same = (y[:, None] == labels[None, :]).float()
    z, protos = _unit(4, 5, 2), _unit(6, 5, 3)
    logits = F.softplus(z @ protos.T / 0.1)
    q = torch.rand(4, 6, generator=gen)
    _, idx = P.update_weights(q, same, 2, False)
    omega = P.hard_negative_weights(logits, same, 0.15) if hard_negatives else torch.ones_like(logits)
    got = P.mle_loss(logits, q, same, idx, omega if hard_negatives else None)
    assert float(got) == pytest.approx(_naive_mle(logits, q, same, idx, omega), rel=1e-5)


def test_prototype_contrastive_loss_equals_a_naive_loop():
    protos, labels, tau = _unit(6, 4, 5), P.prototype_labels(3, 2), 0.5
    got = P.prototype_contrastive_loss(protos, labels, tau)
    g = (protos @ protos.T / tau).tolist()
    total = 0.0
    for j in range(6):
        row = [v - max(g[j]) for v in g[j]]
        pos = [row[m] for m in range(6) if m != j and labels[m] == labels[j]]
        neg = math.log(sum(math.exp(row[m]) for m in range(6) if m != j))
        total += sum(pos) / len(pos) - neg
    assert float(got) == pytest.approx(-total / 6, rel=1e-5)


@pytest.mark.parametrize("name", ["palm", "adapt"])
def test_one_sgd_step_lowers_the_loss_on_a_tiny_model(name):
    torch.manual_seed(0)
    model = build_model("small_cnn", num_classes=3, in_channels=1, width=0.25)
    method = build_method(
        name, augmentation="simclr_gray", mean=[0.5], std=[0.25], n_proto=2, k=2, proj_dim=16
    )
    method.setup(model, 3)
    x, y = torch.randn(24, 1, 28, 28), torch.arange(3).repeat(4)
    opt = torch.optim.SGD([*model.parameters(), *method.parameters()], lr=0.01)
    protos = method.prototypes.clone()

    def loss():
        method.prototypes = protos.clone()
        torch.manual_seed(1)  # the same dropout masks in both evaluations
        return method(model, x, y)[0]

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss()
    assert float(after) < float(before.detach())
    assert not torch.equal(method.prototypes, protos)  # the call moved the prototypes (EMA)


def test_adapt_differs_from_palm_exactly_in_its_four_choices():
    palm, adapt = build_method("palm"), build_method("adapt")
    assert (palm.softplus, palm.beta, palm.normalize_columns, palm.proto_temp) == (False, None, True, 0.5)
    assert (adapt.softplus, adapt.beta, adapt.normalize_columns, adapt.proto_temp) == (
        True,
        0.15,
        False,
        None,
    )
    assert (adapt.tau0, adapt.align_ref) == (0.4, 0.5)
    with pytest.raises(ValueError, match="softplus"):
        P.MultiPrototype(beta=0.1)


# --------------------------------------------------------------------------- views and training
@pytest.mark.parametrize("policy,channels", [("simclr", 3), ("simclr_gray", 1)])
def test_views_are_seeded_and_stay_in_the_pixel_range(policy, channels):
    mean, std = [0.5] * channels, [0.25] * channels
    x = (torch.rand(8, channels, 16, 16) - 0.5) / 0.25
    a = make_view(x, policy, torch.Generator().manual_seed(4), mean, std)
    b = make_view(x, policy, torch.Generator().manual_seed(4), mean, std)
    c = make_view(x, policy, torch.Generator().manual_seed(5), mean, std)
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    pixels = a * 0.25 + 0.5
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    assert set(POLICIES) == {"simclr", "simclr_gray"}


def test_warmup_cosine_schedule_closed_form():
    f = training.warmup_cosine
    assert [f(s, 100, 10, 0.001) for s in (0, 5)] == [0.0, 0.5]
    assert f(10, 100, 10, 0.001) == pytest.approx(1.0)
    assert f(55, 100, 10, 0.001) == pytest.approx(0.001 + 0.999 * 0.5)
    assert f(100, 100, 10, 0.001) == pytest.approx(0.001)


def _palm_config(epochs):
    return {
        "seed": 0,
        "benchmark": {"name": "mnist5k"},
        "run": {
            "model": "small_cnn",
            "model_args": {"width": 0.25},
            "method": "adapt",
            "method_args": {"augmentation": "simclr_gray", "mean": [0.13], "std": [0.31], "proj_dim": 8},
            "optimizer": "sgd",
            "lr": 0.05,
            "momentum": 0.9,
            "weight_decay": 0.0,
            "scheduler": "warmup_cosine",
            "warmup_epochs": 1,
            "min_lr_ratio": 0.001,
            "epochs": epochs,
            "batch_size": 16,
            "augment": True,
            "select": "min_train_loss",
        },
    }


class _Killed(Exception):
    pass


def test_two_view_training_resumes_bit_for_bit_and_keeps_the_lowest_loss_epoch(tmp_path):
    gen = torch.Generator().manual_seed(0)
    split = training.Split(torch.randn(40, 1, 28, 28, generator=gen), torch.arange(10).repeat(4))
    kw = dict(num_classes=10, device=torch.device("cpu"))
    full, rows = training.train(
        _palm_config(3), split, split, checkpoint_path=tmp_path / "a.pt", log=lambda m: None, **kw
    )

    def kill_in_epoch_3(msg):  # the loop logs an epoch's row before saving its checkpoint
        if msg.startswith("epoch=3"):
            raise _Killed

    ck = tmp_path / "b.pt"
    with pytest.raises(_Killed):
        training.train(_palm_config(3), split, split, checkpoint_path=ck, log=kill_in_epoch_3, **kw)
    assert torch.load(ck, weights_only=True)["epoch"] == 1  # epochs 1 and 2 are done
    resumed, rows2 = training.train(
        _palm_config(3), split, split, checkpoint_path=ck, log=lambda m: None, **kw
    )
    assert rows2 == rows
    for k, v in full.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k
    for k, v in full.method_state.items():
        assert torch.equal(resumed.method_state[k], v), k
    # the returned weights are those of the lowest-loss epoch (saved as "best" in the checkpoint)
    best = torch.load(ck, weights_only=True)["best"]
    assert best["epoch"] == min(range(3), key=lambda e: rows[e]["train_loss"])
    for k, v in best["model"].items():
        assert torch.equal(full.state_dict()[k], v)
    assert full.method_state["prototypes"].shape == (10 * 6, 8)


# --------------------------------------------------------------------------- scores
def _cache(f, y=None):
    y = np.zeros(len(f), dtype=np.int64) if y is None else y
    return Cache(np.zeros((len(f), 2)), f, y)


def _random_features(seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 200)
    f = rng.normal(size=(200, 6)) + y[:, None] * 0.5
    return f, y, rng.normal(size=(30, 6))


@pytest.mark.parametrize("normalize", [False, True])
def test_mahalanobis_pooled_equals_numpy_pinv(normalize):
    f, y, q = _random_features()
    score = build_score("mahalanobis_pooled", normalize=normalize).fit(_cache(f, y))
    got = score.score(_cache(q))
    if normalize:
        f, q = f / np.linalg.norm(f, axis=1, keepdims=True), q / np.linalg.norm(q, axis=1, keepdims=True)
    means = np.stack([f[y == c].mean(0) for c in range(4)])
    prec = np.linalg.pinv(np.cov(f.T))  # pooled, unbiased (torch.cov)
    d = np.stack([np.einsum("nd,de,ne->n", q - m, prec, q - m) for m in means], 1)
    np.testing.assert_allclose(got, -0.5 * d.min(1), rtol=1e-8)


def test_mahalanobis_tied_within_class_with_normalize_equals_numpy():
    f, y, q = _random_features(1)
    got = build_score("mahalanobis", normalize=True).fit(_cache(f, y)).score(_cache(q))
    f, q = f / np.linalg.norm(f, axis=1, keepdims=True), q / np.linalg.norm(q, axis=1, keepdims=True)
    means = np.stack([f[y == c].mean(0) for c in range(4)])
    centred = f - means[y]
    prec = np.linalg.pinv(centred.T @ centred / len(f))
    d = np.stack([np.einsum("nd,de,ne->n", q - m, prec, q - m) for m in means], 1)
    np.testing.assert_allclose(got, -d.min(1), rtol=1e-8)
    # the default (no normalisation) is unchanged by the new argument
    plain = build_score("mahalanobis").fit(_cache(*_random_features(1)[:2]))
    assert not plain.normalize


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_knn_equals_sklearn_on_both_backends(backend):
    f, y, q = _random_features(2)
    got = build_score("knn", k=7, backend=backend).fit(_cache(f, y)).score(_cache(q))
    fn, qn = f / np.linalg.norm(f, axis=1, keepdims=True), q / np.linalg.norm(q, axis=1, keepdims=True)
    dist, _ = NearestNeighbors(n_neighbors=7).fit(fn).kneighbors(qn)
    np.testing.assert_allclose(got, -dist[:, -1], rtol=1e-5 if backend == "torch" else 1e-10, atol=1e-6)
    sq = kth_sqdist(qn, fn, 7, backend)
    np.testing.assert_allclose(sq, dist[:, -1] ** 2, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="backend"):
        build_score("knn", backend="faiss")


# --------------------------------------------------------------------------- config
def _config(**run):
    spec = {"model": "small_cnn", "method": "palm", **run}
    return {"benchmark": {"name": "mnist5k"}, "runs": {"p": spec}, "scores": {"knn": {}, "vim": {"dim": 4}}}


def test_prototype_runs_must_list_feature_scores():
    with pytest.raises(ConfigError, match="runs.p.scores: method 'palm' trains no classifier head"):
        validate(_config(), load_schema())
    with pytest.raises(ConfigError, match="runs.p.scores: vim need a trained classifier head"):
        validate(_config(scores=["knn", "vim"]), load_schema())
    with pytest.raises(ConfigError, match="runs.p.scores.0: score 'msp' is not in the config's scores"):
        validate(_config(scores=["msp"]), load_schema())
    cfg = validate(_config(scores=["knn"]), load_schema())
    assert cfg["runs"]["p"]["scores"] == ["knn"] and "select" not in cfg["runs"]["p"]


def test_run_scores_are_not_part_of_the_training_config():
    from oodflow.steps import run_config

    cfg = validate(_config(scores=["knn"]), load_schema())
    rc = run_config(cfg, "p")
    assert "scores" not in rc["run"] and rc["run"]["method_args"]["mean"] == [0.1307]
    assert copy.deepcopy(cfg)["runs"]["p"]["scores"] == ["knn"]


def _ssd_oracle(f, q, palm_centre=False):
    """PALM's evaluator re-derived from its description (jeff024/PALM, SSD+): unit rows (+1e-10),
    standardised with the training mean and population std (+1e-10), one Gaussian with the biased
    covariance of the standardised training features, score = -squared Mahalanobis distance (pinv)."""
    unit = lambda x: x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-10)  # noqa: E731
    ft, qt = unit(f), unit(q)
    m, s = ft.mean(0), ft.std(0)
    vt, vq = (ft - m) / (s + 1e-10), (qt - m) / (s + 1e-10)
    prec = np.linalg.pinv(np.cov(vt.T, bias=True))
    c = m if palm_centre else vt.mean(0)
    return -np.einsum("nd,de,ne->n", vq - c, prec, vq - c)


def test_ssd_is_one_class_agnostic_gaussian_on_standardised_unit_features():
    f, y, q = _random_features(3)
    f, q = f * np.exp(np.random.default_rng(3).normal(size=(len(f), 1))), q * 3.0  # norms vary
    got = build_score("ssd").fit(_cache(f, y)).score(_cache(q))
    np.testing.assert_allclose(got, _ssd_oracle(f, q), rtol=1e-8)
    # class-agnostic: the labels do not matter; scale-free: the row norms do not matter
    shuffled = build_score("ssd").fit(_cache(f, np.roll(y, 7))).score(_cache(q))
    np.testing.assert_array_equal(got, shuffled)
    np.testing.assert_allclose(build_score("ssd").fit(_cache(f, y)).score(_cache(5 * q)), got, rtol=1e-9)
    # it is not ADAPT's class-conditional score, nor one Gaussian without the standardisation
    pooled = build_score("mahalanobis_pooled").fit(_cache(f, y)).score(_cache(q))
    assert (np.argsort(pooled) != np.argsort(got)).any()
    assert np.all(got <= 1e-9)  # a negated quadratic form


def test_ssd_palm_centre_reproduces_palms_double_shift():
    f, y, q = _random_features(4)
    f, q = f + 3.0, q + 3.0  # a large mean of the unit features, so the two centres differ
    palm = build_score("ssd", center="palm").fit(_cache(f, y)).score(_cache(q))
    np.testing.assert_allclose(palm, _ssd_oracle(f, q, palm_centre=True), rtol=1e-8)
    ours = build_score("ssd").fit(_cache(f, y)).score(_cache(q))
    assert np.abs(palm - ours).max() > 1e-3 * np.abs(ours).max()
    with pytest.raises(ValueError, match="unknown center 'x'; valid: standardised, palm"):
        build_score("ssd", center="x")


@pytest.mark.parametrize("after", [False, True])
def test_warmup_cosine_lr_timing_ours_and_adapts(after):
    """The LR each optimiser step runs with. ADAPT (train_adapt.py, adjust_learning_rate) re-derived:
    the optimiser starts at the base lr, and after step t the LR is set to base * f(t); so step t runs
    with base * f(t - 1) and step 0 with the base lr. Ours: step t runs with base * f(t)."""
    steps, warmup, ratio, base = 30, 10, 0.001, 0.5
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=base)
    run = {"scheduler": "warmup_cosine", "warmup_epochs": 2, "min_lr_ratio": ratio}
    if after:
        run["lr_after_step"] = True
    sched = training.make_scheduler(opt, run, steps, steps_per_epoch=5)
    used = []
    for _ in range(steps):
        used.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    f = training.warmup_cosine
    if after:
        expected, lr = [], base  # ADAPT's loop
        for t in range(steps):
            expected.append(lr)
            lr = base * f(t, steps, warmup, ratio)
    else:
        expected = [base * f(t, steps, warmup, ratio) for t in range(steps)]
    np.testing.assert_allclose(used, expected, rtol=1e-12)
    assert (used[0] == base) is after and used[1] == pytest.approx(base * (0.0 if after else 0.1))
