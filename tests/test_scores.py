"""Tests of oodflow.scores: closed forms, "higher = ID" sign, and cross-checks.

pytorch-ood detectors return outlier scores (higher = OOD), so where the definitions agree
``ours == -theirs``. Differences in definition found in pytorch-ood 0.4.0:

* ``Mahalanobis``: its "covariance" is the *sum* of centred outer products (not divided by N),
  plus 1e-6 * I, and its score is half the squared distance. Hence ours = -2 N * theirs (up to
  the ridge, negligible here). It computes in float32.
* ``ReAct``: ``percentile`` is a fraction (0.9), ours is in percent (90); same numpy percentile.
* ``ViM``: if ``d`` exceeds the feature dimension it silently uses ``D // 2``; we raise. It
  recomputes the logits from the head (we use the cached logits; equal for a linear head) and
  computes in float32.
* ``KNN`` and ``ODIN`` (without ``norm_std``) match our definitions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from oodflow.io import FormatError, save_npz
from oodflow.scores import SCORES, Cache, Head, build_score
from oodflow.scores.distance_based import KNN, Mahalanobis
from oodflow.scores.head_based import ReAct, ViM
from oodflow.scores.logit_based import MSP, Energy, MaxLogit

SRC = Path(__file__).resolve().parents[1] / "src"


def logits_cache(logits) -> Cache:
    logits = np.asarray(logits, dtype=np.float64)
    return Cache(logits, np.zeros((len(logits), 1)), np.zeros(len(logits), dtype=np.int64))


def gaussian_problem(seed: int = 0, n: int = 300, classes: int = 4, dim: int = 12):
    """Class clusters with distinct per-dimension scales, a random head, consistent logits."""
    rng = np.random.default_rng(seed)
    scales = np.linspace(0.5, 2.0, dim)
    means = rng.normal(0.0, 3.0, (classes, dim))
    head = Head(rng.normal(0.0, 0.5, (classes, dim)), rng.normal(0.0, 0.5, classes))

    def cache(m: int) -> Cache:
        y = rng.integers(0, classes, m)
        f = means[y] + rng.normal(size=(m, dim)) * scales
        return Cache(head.logits(f), f, y)

    return cache(n), cache(n // 3), head, means


def torch_and_ood():
    torch = pytest.importorskip("torch")
    detector = pytest.importorskip("pytorch_ood.detector")
    return torch, detector


# ---------------------------------------------------------------- closed forms (logit scores)


def test_msp_of_equal_logits_is_one_over_k_and_stable():
    out = MSP().score(logits_cache([[7.0] * 5, [-1000.0] * 5, [1000.0, 0.0, 0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(out, [0.2, 0.2, 1.0], rtol=1e-12)
    assert out.dtype == np.float64


def test_maxlogit_and_energy_hand_examples():
    z = [[1.0, 2.0, 3.0], [1000.0, 1000.0, -5.0]]
    np.testing.assert_array_equal(MaxLogit().score(logits_cache(z)), [3.0, 1000.0])
    energy_t2 = Energy(temperature=2.0).score(logits_cache(z))
    assert energy_t2[0] == pytest.approx(2.0 * np.log(np.exp(0.5) + np.exp(1.0) + np.exp(1.5)))
    assert energy_t2[1] == pytest.approx(2.0 * (500.0 + np.log(2.0 + np.exp(-502.5))))
    assert Energy().score(logits_cache(z))[1] == pytest.approx(1000.0 + np.log(2.0))
    with pytest.raises(ValueError, match="temperature"):
        Energy(temperature=0.0)


@pytest.mark.parametrize("temperature", [1.0, 3.5])
def test_logit_scores_match_pytorch_ood(temperature):
    torch, det = torch_and_ood()
    z = np.random.default_rng(1).normal(0.0, 4.0, (50, 7))
    cache, tz = logits_cache(z), torch.from_numpy(z)
    theirs_energy = det.EnergyBased.score(tz, t=temperature).numpy()
    np.testing.assert_allclose(Energy(temperature).score(cache), -theirs_energy, rtol=1e-12)
    np.testing.assert_allclose(MSP().score(cache), -det.MaxSoftmax.score(tz).numpy(), rtol=1e-12)
    np.testing.assert_allclose(MaxLogit().score(cache), -det.MaxLogit.score(tz).numpy())


# ----------------------------------------------------------------------------- Mahalanobis


def direct_mahalanobis(train: Cache, test: Cache) -> np.ndarray:
    """Loop over classes with an explicit inverse (independent of the implementation)."""
    f, y = train.features, train.labels
    mus = {c: f[y == c].mean(0) for c in np.unique(y)}
    cov = sum((f[y == c] - mu).T @ (f[y == c] - mu) for c, mu in mus.items()) / len(f)
    prec = np.linalg.inv(cov)
    diffs = [test.features - mu for mu in mus.values()]
    d = [np.einsum("nd,de,ne->n", x, prec, x) for x in diffs]
    return -np.min(d, axis=0)


def test_mahalanobis_matches_direct_and_pytorch_ood():
    train, test, _, _ = gaussian_problem()
    ours = Mahalanobis().fit(train).score(test)
    np.testing.assert_allclose(ours, direct_mahalanobis(train, test), rtol=1e-9)
    torch, det = torch_and_ood()
    f32 = lambda x: torch.from_numpy(x).float()  # its buffers are float32
    theirs = det.Mahalanobis(None)
    theirs.fit_features(f32(train.features), torch.from_numpy(train.labels))
    theirs = theirs.predict_features(f32(test.features)).double().numpy()
    np.testing.assert_allclose(ours, -2.0 * len(train) * theirs, rtol=1e-4)


def test_mahalanobis_singular_covariance_uses_pseudo_inverse():
    train, test, _, _ = gaussian_problem(seed=2)
    dup = lambda c: Cache(c.logits, np.c_[c.features, c.features[:, :3]], c.labels)
    full = Mahalanobis().fit(train).score(test)
    singular = Mahalanobis().fit(dup(train)).score(dup(test))
    assert np.isfinite(singular).all()
    np.testing.assert_allclose(singular, full, rtol=1e-6)


# ------------------------------------------------------------------------------------- KNN


def test_knn_matches_sklearn_and_pytorch_ood():
    from sklearn.neighbors import NearestNeighbors

    train, test, _, _ = gaussian_problem(seed=3)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    nn = NearestNeighbors().fit(unit(train.features))
    expected = -nn.kneighbors(unit(test.features), n_neighbors=5)[0][:, -1]
    knn = KNN(k=5).fit(train)
    np.testing.assert_allclose(knn.score(test), expected, atol=1e-7)
    torch, det = torch_and_ood()
    theirs = det.KNN(None, k=5).fit_features(torch.from_numpy(train.features), torch.from_numpy(train.labels))
    theirs = theirs.predict_features(torch.from_numpy(test.features)).numpy()
    np.testing.assert_allclose(knn.score(test), -theirs, atol=1e-7)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_knn_multi_block_query_path_equals_brute_force(backend, monkeypatch):
    """3 queries per block over a test set that is not a multiple of 3 (the last block is partial):
    every block's k-th distance equals a brute-force sort of the whole distance matrix."""
    from oodflow import neighbours

    train, test, _, _ = gaussian_problem(seed=5)
    test = Cache(test.logits[:31], test.features[:31], test.labels[:31])
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    q, b = unit(test.features), unit(train.features)
    brute = np.sort(((q[:, None, :] - b[None, :, :]) ** 2).sum(-1), axis=1)[:, 6]  # k = 7
    blocks = []
    real = {"numpy": neighbours.kth_sqdist_numpy, "torch": neighbours.kth_sqdist_torch}[backend]

    def spy(queries, bank, k, *args, **kwargs):
        blocks.append(neighbours._block_rows(None, len(bank)))
        return real(queries, bank, k, *args, **kwargs)

    monkeypatch.setattr(neighbours, "BLOCK_ENTRIES", 3 * len(train))
    monkeypatch.setattr(neighbours, f"kth_sqdist_{backend}", spy)
    got = KNN(k=7, backend=backend).fit(train).score(test)
    assert blocks == [3]  # 11 blocks of at most 3 queries
    np.testing.assert_allclose(got, -np.sqrt(brute), atol=1e-6 if backend == "torch" else 1e-10)
    # a query's result does not depend on which block it lands in
    shifted = real(q[1:], b, 7, **({"device": "cpu"} if backend == "torch" else {}))
    np.testing.assert_allclose(shifted, brute[1:], atol=1e-6 if backend == "torch" else 1e-10)


def test_knn_rejects_k_larger_than_train_and_unfitted_use():
    train, test, _, _ = gaussian_problem(n=30)
    with pytest.raises(ValueError, match="k=50 exceeds the 30 training samples"):
        KNN().fit(train)
    with pytest.raises(RuntimeError, match="fitted first"):
        KNN(k=3).score(test)


# ------------------------------------------------------------------------------ ReAct, ViM


def test_react_closed_form_and_pytorch_ood():
    train, test, head, _ = gaussian_problem(seed=4)
    react = ReAct(percentile=90).fit(train, head)
    assert react.threshold == pytest.approx(np.percentile(train.features, 90))
    unclipped = ReAct(percentile=100).fit(train, head).score(test)
    np.testing.assert_allclose(unclipped, Energy().score(test), rtol=1e-12)
    ours = react.score(test)
    assert not np.allclose(ours, unclipped)  # the clipping does something here
    torch, det = torch_and_ood()
    w, b = torch.from_numpy(head.weight), torch.from_numpy(head.bias)
    theirs = det.ReAct(backbone=None, head=lambda z: z @ w.T + b, percentile=0.9)
    theirs.fit_feature_maps(torch.from_numpy(train.features), torch.from_numpy(train.labels))
    theirs = theirs.predict_feature_maps(torch.from_numpy(test.features)).numpy()
    np.testing.assert_allclose(ours, -theirs, rtol=1e-10)


def test_vim_matches_pytorch_ood():
    train, test, head, _ = gaussian_problem(seed=5, n=600)
    vim = ViM(dim=5).fit(train, head)
    torch, det = torch_and_ood()
    theirs = det.ViM(None, d=5, w=torch.from_numpy(head.weight), b=torch.from_numpy(head.bias))
    theirs.fit_features(torch.from_numpy(train.features), torch.from_numpy(train.labels))
    assert vim.alpha == pytest.approx(theirs.alpha, rel=1e-4)
    theirs = theirs.predict_features(torch.from_numpy(test.features)).double().numpy()
    ours = vim.score(test)
    np.testing.assert_allclose(ours, -theirs, rtol=1e-4, atol=1e-4 * np.abs(ours).max())


def test_vim_rejects_too_large_dim_and_missing_head():
    train, _, head, _ = gaussian_problem()
    with pytest.raises(ValueError, match="dim=12 must be smaller than the feature dimension 12"):
        ViM(dim=12).fit(train, head)
    with pytest.raises(ValueError, match="needs the network head"):
        ViM(dim=3).fit(train)


# -------------------------------------------------------------------- sign: near > far


def test_feature_scores_rank_near_above_far():
    rng = np.random.default_rng(6)
    dim, k_cls = 10, 3
    # the head only reads the first 4 dims; ID variance lives mostly there too
    weight = np.zeros((k_cls, dim))
    weight[:, :4] = rng.normal(size=(k_cls, 4))
    head = Head(weight, rng.normal(size=k_cls))
    means = np.zeros((k_cls, dim))
    means[:, :4] = rng.normal(0.0, 4.0, (k_cls, 4))
    y = rng.integers(0, k_cls, 400)
    f = means[y] + rng.normal(size=(400, dim)) * np.r_[[1.0] * 4, [0.1] * 6]
    train = Cache(head.logits(f), f, y)
    near = means[0] + 0.01
    far = near + np.r_[[0.0] * 4, [5.0] * 6]  # off the ID cluster, same logits
    probe = np.stack([near, far])
    cache = Cache(head.logits(probe), probe, np.zeros(2, dtype=np.int64))
    for score in (Mahalanobis(), KNN(k=10), ViM(dim=4)):
        s = score.fit(train, head).score(cache)
        assert s[0] > s[1], type(score).__name__


# -------------------------------------------------------------------------------------- ODIN


def tiny_model(torch):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(16, 4)
    ).double()


def test_odin_reduces_to_msp_and_perturbation_raises_confidence():
    torch, det = torch_and_ood()
    model = tiny_model(torch)
    x = torch.randn(64, 6, dtype=torch.float64)
    model.train()  # ODIN must switch to eval mode (dropout off) and restore the mode
    plain = build_score("odin", temperature=1.0, epsilon=0.0).score_inputs(model, x)
    assert model.training
    with torch.no_grad():
        msp = MSP().score(logits_cache(model.eval()(x).numpy()))
    np.testing.assert_allclose(plain.numpy(), msp, rtol=1e-12)
    for temperature in (1.0, 1000.0):
        base = build_score("odin", temperature=temperature, epsilon=0.0).score_inputs(model, x)
        moved = build_score("odin", temperature=temperature, epsilon=0.05).score_inputs(model, x)
        assert moved.mean() > base.mean()
    assert all(p.grad is None for p in model.parameters())


def test_odin_matches_pytorch_ood():
    torch, det = torch_and_ood()
    model = tiny_model(torch).eval()
    x = torch.randn(32, 6, dtype=torch.float64)
    std = [0.2]  # one channel of 6 features: pytorch-ood divides the signed gradient by norm_std
    ours = build_score("odin", temperature=1000.0, epsilon=0.01).set_normalisation([0.5], std)
    theirs = det.ODIN(model, eps=0.01, temperature=1000.0, norm_std=std).predict(x)
    np.testing.assert_allclose(ours.score_inputs(model, x).numpy(), -theirs.detach().numpy(), rtol=1e-12)
    # without a normalisation the inputs are pixels (std 1), pytorch-ood without norm_std
    plain = build_score("odin", temperature=1000.0, epsilon=0.01).score_inputs(model, x)
    theirs = det.ODIN(model, eps=0.01, temperature=1000.0).predict(x)
    np.testing.assert_allclose(plain.numpy(), -theirs.detach().numpy(), rtol=1e-12)
    with pytest.raises(TypeError, match="needs the network"):
        build_score("odin").score(logits_cache([[1.0, 2.0]]))


def test_odin_with_eps_in_pixels_equals_the_official_formula_on_cifar_normalised_inputs():
    """Liang et al.: the pixel image v is moved by eps along the sign of grad_v log S_yhat(v; T) and the
    score is the max tempered softmax there. The model sees x = (v - mean) / std, so on its normalised
    inputs the step is eps / std per channel: x~ = x - (eps / std) * sign(-grad_x log S_yhat)."""
    torch, _ = torch_and_ood()
    from oodflow.data import BENCHMARKS

    bench = BENCHMARKS.get("cifar10")
    mean = torch.tensor(bench.mean, dtype=torch.float64).reshape(1, 3, 1, 1)
    std = torch.tensor(bench.std, dtype=torch.float64).reshape(1, 3, 1, 1)
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5)).double().eval()
    v = torch.rand(16, 3, 4, 4, dtype=torch.float64)  # pixels in [0, 1]
    eps, T = 0.0014, 1000.0

    # oracle in pixel space: the network on pixels is net((v - mean) / std)
    vv = v.clone().requires_grad_(True)
    logits = net((vv - mean) / std) / T
    log_s = logits.log_softmax(1).gather(1, logits.argmax(1, keepdim=True)).sum()
    (grad,) = torch.autograd.grad(log_s, vv)
    v_tilde = v - eps * torch.sign(-grad)
    with torch.no_grad():
        expected = (net((v_tilde - mean) / std) / T).softmax(1).max(1).values

    odin = build_score("odin", temperature=T, epsilon=eps).set_normalisation(bench.mean, bench.std)
    got = odin.score_inputs(net, (v - mean) / std)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)
    # the old behaviour (eps in normalised units) scores differently: the step is ~4x smaller on CIFAR
    old = build_score("odin", temperature=T, epsilon=eps).score_inputs(net, (v - mean) / std)
    assert not torch.allclose(old, expected, rtol=1e-9, atol=0)
    with pytest.raises(ValueError, match="3 normalisation channels"):
        odin.score_inputs(net, torch.zeros(2, 1, 4, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="one finite std > 0 per mean"):
        build_score("odin").set_normalisation([0.5, 0.5], [0.2, 0.0])


# ------------------------------------------------------------------------ registry and cache


def test_registry_errors():
    assert SCORES.names() == sorted(
        [
            "msp",
            "maxlogit",
            "energy",
            "joint_energy",
            "mahalanobis",
            "mahalanobis_pooled",
            "ssd",
            "knn",
            "react",
            "vim",
            "odin",
            "cores",
        ]
    )
    with pytest.raises(KeyError, match="unknown score 'foo'; valid names: cores, energy, joint_energy, knn"):
        build_score("foo")
    with pytest.raises(TypeError, match="score 'knn' got unknown parameter.*kk.*valid.*k"):
        build_score("knn", kk=3)
    with pytest.raises(TypeError, match="score 'msp' got unknown parameter"):
        build_score("msp", temperature=2.0)
    with pytest.raises(TypeError, match="score 'vim' is missing required parameter.*dim"):
        build_score("vim")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        build_score("knn", k=0)
    assert isinstance(build_score("react", percentile=95), ReAct)


def test_import_does_not_import_torch():
    code = (
        "import sys, oodflow.scores as s, oodflow.metrics, oodflow.config as c, yaml\n"
        "for n in s.SCORES.names():\n"
        "    s.SCORES.get(n)\n"
        f"c.validate(yaml.safe_load(open({str(SRC.parent / 'config' / 'config.yaml')!r})))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_cache_from_npz_and_validation(tmp_path):
    train, _, _, _ = gaussian_problem(n=9)
    path = tmp_path / "c.npz"
    save_npz(path, logits=train.logits, features=train.features, labels=train.labels)
    back = Cache.from_npz(path)
    np.testing.assert_array_equal(back.features, train.features)
    save_npz(path, logits=train.logits, features=train.features[:5], labels=train.labels)
    with pytest.raises(FormatError, match="c.npz.*disagree in length"):
        Cache.from_npz(path)
    save_npz(path, logits=train.logits, labels=train.labels)
    with pytest.raises(FormatError, match="missing array 'features'"):
        Cache.from_npz(path)
    broken = train.features.copy()
    broken[3, 4] = np.nan
    with pytest.raises(ValueError, match="features contains 1 NaN"):
        Cache(train.logits, broken, train.labels)


def test_fitted_score_rejects_other_feature_dimension():
    train, test, head, _ = gaussian_problem()
    narrow = Cache(test.logits, test.features[:, :5], test.labels)
    for score in (Mahalanobis(), KNN(k=3), ReAct(), ViM(dim=3)):
        with pytest.raises(ValueError, match="fitted on 12-d features"):
            score.fit(train, head).score(narrow)


def test_network_scores_listed_for_the_workflow():
    from oodflow.scores import NETWORK_SCORES, SCORES

    assert NETWORK_SCORES == {n for n in SCORES.names() if SCORES.get(n).needs_network}


def test_head_round_trips_through_a_cache_file(tmp_path):
    from oodflow.io import FormatError, save_npz
    from oodflow.scores import Head

    w, b = np.arange(6.0).reshape(2, 3), np.array([0.5, -1.0])
    save_npz(tmp_path / "c.npz", head_weight=w, head_bias=b)
    head = Head.from_npz(tmp_path / "c.npz")
    np.testing.assert_array_equal(head.logits(np.eye(3)), np.eye(3) @ w.T + b)
    save_npz(tmp_path / "bad.npz", head_weight=w, head_bias=np.ones(3))
    with pytest.raises(FormatError, match="bad.npz"):
        Head.from_npz(tmp_path / "bad.npz")
