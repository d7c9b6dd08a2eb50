"""Multi-label OOD detection (issue 10): scores, objectives, metrics, OE selection, the embedded set."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from oodflow.multilabel import ML_OBJECTIVES, ML_OE_OBJECTIVES, ML_SCORES
from oodflow.multilabel import embedded as mle
from oodflow.multilabel.config import OBJECTIVE_ARGS
from oodflow.multilabel.metrics import head_labels, mean_average_precision, tail_mask
from oodflow.multilabel.objectives import EDGE, EnergyML, OutlierExposureML, edge_terms
from oodflow.multilabel.oe_selection import dilation_distance, ranking
from oodflow.multilabel.scores import build_ml_score, cache_of, joint_energy


# ------------------------------------------------------------------------------------- scores
def test_joint_energy_closed_form_and_finite_at_extremes():
    z = np.array([[0.0, 1.0, -2.0], [3.0, -1.0, 0.5]])
    expected = np.log1p(np.exp(z)).sum(1)
    np.testing.assert_allclose(joint_energy(z), expected, rtol=1e-12)
    big = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]])
    s = joint_energy(big)
    assert np.isfinite(s).all()
    np.testing.assert_allclose(s, [1e4 + np.log(2.0), 0.0], atol=1e-9)
    # the torch version the objectives use agrees and is finite too
    t = torch.tensor(big, dtype=torch.float32)
    from oodflow.multilabel.objectives import joint_energy as torch_je

    assert torch.isfinite(torch_je(t)).all()
    np.testing.assert_allclose(torch_je(t).numpy(), s, rtol=1e-6)


def test_logit_scores_by_name():
    z = np.array([[2.0, -1.0], [-3.0, 0.5]])
    cache = cache_of(z, np.zeros((2, 3)))
    np.testing.assert_allclose(build_ml_score("max_energy").score(cache), np.log1p(np.exp(z)).max(1))
    np.testing.assert_allclose(build_ml_score("maxlogit").score(cache), [2.0, 0.5])
    np.testing.assert_allclose(
        build_ml_score("max_sigmoid").score(cache), 1 / (1 + np.exp(-np.array([2.0, 0.5])))
    )
    with pytest.raises(KeyError, match="valid names"):
        build_ml_score("nope")


def test_feature_scores_use_one_gaussian_and_knn():
    rng = np.random.default_rng(0)
    train = cache_of(np.zeros((200, 2)), rng.normal(size=(200, 3)))
    test = cache_of(np.zeros((2, 2)), np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]]))
    maha = build_ml_score("mahalanobis").fit(train).score(test)
    f = train.features
    d = test.features - f.mean(0)
    cov = np.cov(f.T, bias=True)
    np.testing.assert_allclose(maha, -np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d), rtol=1e-6)
    knn = build_ml_score("knn", k=3).fit(train).score(test)
    bank = f / np.linalg.norm(f, axis=1, keepdims=True)
    q = np.array([1.0, 1.0, 1.0]) / np.sqrt(3)
    assert knn[1] == pytest.approx(-np.sort(np.linalg.norm(bank - q, axis=1))[2])


# ---------------------------------------------------------------------------------- objectives
def _hand_made():
    z_in = torch.tensor(
        [[2.0, -1.0, 0.0], [-3.0, -2.0, -1.0], [0.5, 0.5, 0.5], [-4.0, -4.0, 1.0]], requires_grad=True
    )
    z_out = torch.tensor([[1.0, 0.0, -1.0], [-2.0, -2.0, -2.0]], requires_grad=True)
    y = torch.tensor([[1, 0, 0], [0, 0, 1], [1, 1, 0], [0, 0, 1]], dtype=torch.float32)
    return z_in, y, z_out


def test_edge_loss_equals_its_formula_with_bottom_k():
    z_in, y, z_out = _hand_made()
    zi, zo, yy = (
        z_in.detach().numpy().astype(np.float64),
        z_out.detach().numpy().astype(np.float64),
        y.numpy(),
    )
    sp = lambda v: np.log1p(np.exp(v))  # noqa: E731
    s_in, s_out = sp(zi).sum(1), sp(zo).sum(1)
    k, m = 2, 0.5
    tail = np.sort(s_in)[:k]  # the two smallest JointEnergies: rows 1 and 3
    assert set(np.argsort(s_in)[:k]) == {1, 3}
    gap = np.mean([max(so - st + m, 0.0) for so in s_out for st in tail])
    bce = np.mean(-(yy * np.log(1 / (1 + np.exp(-zi))) + (1 - yy) * np.log(1 - 1 / (1 + np.exp(-zi)))))
    conf = np.mean(-np.log(1 - 1 / (1 + np.exp(-zo))))
    terms = edge_terms(z_in, y, z_out, k, m)
    np.testing.assert_allclose([float(terms[t]) for t in ("id", "conf", "gap")], [bce, conf, gap], rtol=1e-5)
    obj = EDGE(alpha=2.0, beta=0.3, k=k, m=m, start_epoch=5)
    np.testing.assert_allclose(float(obj(z_in, y, z_out, epoch=4)), bce + 2.0 * conf, rtol=1e-5)  # beta = 0
    np.testing.assert_allclose(float(obj(z_in, y, z_out, epoch=5)), bce + 2.0 * conf + 0.3 * gap, rtol=1e-5)
    # k larger than the batch: every ID image is "tail"
    all_gap = np.mean([max(so - st + m, 0.0) for so in s_out for st in s_in])
    np.testing.assert_allclose(float(edge_terms(z_in, y, z_out, 10, m)["gap"]), all_gap, rtol=1e-5)


def test_edge_gap_gradients_flow_to_oe_and_only_the_tail_id_images():
    z_in, y, z_out = _hand_made()
    edge_terms(z_in, y, z_out, k=2, m=5.0)["gap"].backward()
    g = z_in.grad.abs().sum(1)
    assert g[1] > 0 and g[3] > 0 and g[0] == 0 and g[2] == 0  # bottom-k rows only
    assert (z_out.grad > 0).all()  # the hinge pushes every OE logit down (positive gradient)
    z_in, y, z_out = _hand_made()
    (-edge_terms(z_in, y, z_out, k=2, m=5.0)["gap"]).backward()
    assert (z_in.grad[[1, 3]] > 0).all()  # descent on the gap raises the tail ID logits


def test_baseline_objectives_formulas():
    z_in, y, z_out = _hand_made()
    bce = F.binary_cross_entropy_with_logits(z_in, y)
    oe = OutlierExposureML(lam=0.5)(z_in, y, z_out)
    u = (torch.logsumexp(z_out, 1) - z_out.mean(1)).mean()
    assert torch.isclose(oe, bce + 0.5 * u)
    en = EnergyML(lam=0.1, m_in=-1.0, m_out=1.0)(z_in, y, z_out)
    e_in, e_out = -torch.logsumexp(z_in, 1), -torch.logsumexp(z_out, 1)
    reg = F.relu(e_in + 1.0).pow(2).mean() + F.relu(1.0 - e_out).pow(2).mean()
    assert torch.isclose(en, bce + 0.1 * reg)


def test_registries_match_the_classes():
    for name in ML_OBJECTIVES.names():
        cls = ML_OBJECTIVES.get(name)
        assert tuple(inspect.signature(cls).parameters) == OBJECTIVE_ARGS[name]
        assert cls.uses_oe == (name in ML_OE_OBJECTIVES)
    assert set(ML_SCORES.names()) == {
        "joint_energy",
        "max_energy",
        "maxlogit",
        "max_sigmoid",
        "knn",
        "mahalanobis",
    }


# ------------------------------------------------------------------------------------- metrics
def test_map_equals_an_independent_computation():
    rng = np.random.default_rng(1)
    y = (rng.random((60, 4)) < 0.3).astype(np.uint8)
    y[:, 3] = 0  # a label without positives is left out
    s = rng.normal(size=(60, 4)) + y

    def ap(t, v):  # precision at each positive, ranked by score (no ties here)
        order = np.argsort(-v)
        hits = t[order]
        return np.sum(np.cumsum(hits)[hits == 1] / (np.flatnonzero(hits) + 1)) / hits.sum()

    expected = np.mean([ap(y[:, j], s[:, j]) for j in range(3)])
    assert mean_average_precision(y, s) == pytest.approx(expected, rel=1e-12)


def test_tail_subsets_exclude_head_labels():
    y_train = np.array([[1, 1, 0], [1, 0, 0], [1, 0, 1], [0, 1, 0]])
    order = head_labels(y_train)
    assert order.tolist() == [0, 1, 2]
    y_test = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 1]])
    assert tail_mask(y_test, order, 0).tolist() == [True] * 4
    assert tail_mask(y_test, order, 1).tolist() == [False, True, True, True]
    assert tail_mask(y_test, order, 2).tolist() == [False, False, True, False]


def test_head_labels_rank_by_the_evaluated_sets_counts_ties_higher_index_first(tmp_path):
    """EDGE's get_id_auc ranks labels by their counts in the evaluated set, descending, ties broken
    toward the higher label index (an ascending argsort reversed)."""
    rng = np.random.default_rng(4)
    y_test = (rng.random((60, 7)) < [0.5, 0.2, 0.5, 0.1, 0.2, 0.5, 0.3]).astype(np.int64)
    y_test[:, 2] = y_test[:, 0]  # a tie between labels 0 and 2
    counts = y_test.sum(0)
    expected = sorted(range(7), key=lambda j: (-counts[j], -j))
    assert head_labels(y_test).tolist() == expected
    assert expected.index(2) < expected.index(0)
    with pytest.raises(ValueError, match=r"\(N, C\) multi-hot"):
        head_labels(np.ones(3))

    # tail_frame ranks by the test set, not the (differently distributed) training set
    from oodflow.io import save_npz
    from oodflow.multilabel.report import tail_frame

    y_train = np.zeros((10, 7), np.int64)
    y_train[:, 3] = 1  # label 3 is the training head, rare in the test set
    ids, ood = rng.normal(size=60), rng.normal(size=30)
    save_npz(tmp_path / "s.npz", id=ids, far=ood)
    save_npz(tmp_path / "c.npz", targets=y_test)
    tail = {"j": [1], "scores": ["joint_energy"], "min_images": 2}
    bench, runs = {"name": "b", "ood_sets": ["far"]}, {"r": {"objective": "bce"}}
    config = {"multilabel": {"benchmark": bench, "runs": runs, "tail": tail}}
    files, caches = {("r", "joint_energy"): str(tmp_path / "s.npz")}, {"r": str(tmp_path / "c.npz")}
    frame = tail_frame(config, files, caches, y_train)
    keep = y_test[:, expected[0]] == 0
    assert set(frame.n_id) == {int(keep.sum())}
    config["multilabel"]["tail"]["rank_by"] = "train"
    assert set(tail_frame(config, files, caches, y_train).n_id) == {int((y_test[:, 3] == 0).sum())}


# -------------------------------------------------------------------------------- OE selection
def test_dilation_distance_equals_numpy_and_quirk_scales_by_sqrt_k():
    rng = np.random.default_rng(2)
    f_in, f_out = rng.normal(size=(70, 8)), 2 * rng.normal(size=(50, 8))
    bs, k = 16, 3
    n_b = 50 // bs  # 3 full batches of the smaller set; the rest is ignored

    def spec(f):
        return np.mean([np.linalg.svd(f[b * bs : (b + 1) * bs])[1] for b in range(n_b)], axis=0)

    s_in, s_out = spec(f_in), spec(f_out)
    assert dilation_distance(f_in, f_out, k, bs) == pytest.approx(
        np.sqrt(((s_in[:k] - s_out[:k]) ** 2).sum())
    )
    quirk = dilation_distance(f_in, f_out, k, bs, quirk_sqrt_k=True)
    assert quirk == pytest.approx(np.sqrt(k) * np.linalg.norm(s_in - s_out))
    # the reference's broadcast accumulators: k identical rows holding every singular value
    acc_in, acc_out = np.broadcast_to(s_in, (bs, len(s_in))), np.broadcast_to(s_out, (bs, len(s_out)))
    assert quirk == pytest.approx(np.linalg.norm(acc_in[:k] - acc_out[:k]))
    rows = ranking(f_in, {"near": f_in[:50] + 0.01, "far": f_out}, k, bs, seed=0)
    assert [r["oe_set"] for r in rows] == ["far", "near"]
    cands = {"near": f_in[:50] + 0.01, "far": f_out}
    assert [r["oe_set"] for r in ranking(f_in, cands, k, bs, prefer="smaller", seed=0)] == ["near", "far"]


def test_oe_selection_batches_are_a_seeded_permutation_not_source_order():
    """Upstream's loaders shuffle (DataLoader(shuffle=True)). An ID set stored sorted by class (two
    blocks along orthogonal directions) has rank-1 consecutive batches; a candidate holding the
    same rows in random order has rank-2 batches. In source order the two spectra differ a lot;
    drawn shuffled, both sets' batches mix the classes and the distance nearly vanishes."""
    rng = np.random.default_rng(0)
    n, d, bs, k = 256, 6, 32, 2
    f_id = np.zeros((n, d))
    f_id[: n // 2, 0] = 5 + 0.1 * rng.normal(size=n // 2)
    f_id[n // 2 :, 1] = 5 + 0.1 * rng.normal(size=n // 2)
    mixed = f_id[rng.permutation(n)]
    consecutive = dilation_distance(f_id, mixed, k, bs)
    (row,) = ranking(f_id, {"mixed": mixed}, k, bs, seed=3)
    assert row["distance"] < 0.2 * consecutive
    # the batches are the rows of a seeded permutation: same seed, same table; another, another
    assert ranking(f_id, {"mixed": mixed}, k, bs, seed=3) == [row]
    assert ranking(f_id, {"mixed": mixed}, k, bs, seed=4)[0]["distance"] != row["distance"]
    # re-derivation: batch b = rows order[b*B:(b+1)*B] of a permutation of each set's rows
    from oodflow.multilabel.oe_selection import batch_order

    o_id, o_mix = batch_order(n, 3, "id"), batch_order(n, 3, "mixed")
    assert sorted(o_id) == list(range(n)) and not np.array_equal(o_id, np.arange(n))
    assert not np.array_equal(o_id, o_mix)

    def spec(f, o):
        return np.mean([np.linalg.svd(f[o[b * bs : (b + 1) * bs]])[1] for b in range(n // bs)], axis=0)

    expected = np.linalg.norm(spec(f_id, o_id)[:k] - spec(mixed, o_mix)[:k])
    assert row["distance"] == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------------- embedded set
def test_builder_is_deterministic_and_long_tailed_as_declared():
    sizes = {"train": 600, "test": 50}
    a = mle.build_id_canvases(0, sizes, zipf=1.0)
    b = mle.build_id_canvases(0, sizes, zipf=1.0)
    for split in sizes:
        assert np.array_equal(a[split][0], b[split][0]) and np.array_equal(a[split][1], b[split][1])
    x, y = a["train"]
    assert x.shape == (600, 32, 32) and x.dtype == np.uint8 and y.shape == (600, 10)
    assert set(y.sum(1).tolist()) <= {2, 3, 4}
    freq = y.mean(0)
    expected = mle.expected_label_frequency(1.0, 2, 4)
    assert np.all(np.diff(expected) < 0)  # declared: strictly decreasing from digit 0 to 9
    np.testing.assert_allclose(freq, expected, atol=0.06)
    assert freq[0] > 4 * freq[9]  # head vs tail
    # every tile in a quadrant: a canvas with label set L has exactly |L| non-empty quadrants
    nonempty = [sum(x[i, r : r + 16, c : c + 16].any() for r, c in mle.QUADRANTS) for i in range(20)]
    assert nonempty == y[:20].sum(1).tolist()
    other = mle.build_id_canvases(1, {"test": 50}, zipf=1.0)["test"][0]
    assert not np.array_equal(other, a["test"][0])


def test_outlier_canvases_deterministic_with_zero_targets():
    x1, y1 = mle.build_outlier_canvases("uniform", 0, 20)
    x2, _ = mle.build_outlier_canvases("uniform", 0, 20)
    assert np.array_equal(x1, x2) and y1.shape == (20, 10) and not y1.any()


def _selection_config(model: str, model_args: dict) -> dict:
    run = {"model": model, "model_args": model_args}
    return {
        "seed": 0,
        "device": "cpu",
        "multilabel": {
            "benchmark": {"name": "mnist5k-ml", "eval_transform": "deterministic"},
            "runs": {"r": run},
            "oe_selection": {"run": "r"},
        },
    }


def test_oe_selection_cache_of_a_resnet50_is_2048_d_and_ignores_the_neck_init(tmp_path, monkeypatch):
    """EDGE's oe.py takes the SVD of the 2048-d average-pooled ResNet-50 output; the clssimp neck
    (Linear 2048->1000 + BN + ReLU) is randomly initialised when ``trained: false`` and must not
    enter the selection: re-seeding the neck changes the classifier features, not the cache."""
    from oodflow.io import load_npz, save_npz
    from oodflow.multilabel import steps

    rng = np.random.default_rng(0)
    data = tmp_path / "train.npz"
    save_npz(data, x=rng.integers(0, 256, (6, 32, 32), dtype=np.uint8), y=np.zeros((6, 10), np.uint8))
    config = _selection_config("resnet50", {"width": 0.25})
    build = steps._model

    def reseeded_neck(seed):
        def model(*args, **kwargs):
            m = build(*args, **kwargs)
            torch.manual_seed(seed)
            m.neck[1].reset_parameters()
            return m

        return model

    caches, feats = [], []
    for neck_seed in (1, 2):
        monkeypatch.setattr(steps, "_model", reseeded_neck(neck_seed))
        out, ext = tmp_path / f"sel{neck_seed}.npz", tmp_path / f"ext{neck_seed}.npz"
        steps.oe_features(config, None, {"train": str(data)}, {"train": str(out)})
        steps.extract(config, "r", None, {"train": str(data)}, {"train": str(ext)})
        caches.append(load_npz(out)["features"])
        feats.append(load_npz(ext)["features"])
    assert caches[0].shape == (6, 2048) and feats[0].shape == (6, 1000)
    np.testing.assert_array_equal(caches[0], caches[1])
    assert not np.allclose(feats[0], feats[1])  # the neck does change the classifier features


def test_random_train_eval_quirk_applies_edges_augmentation_on_a_paper_benchmark(tmp_path, monkeypatch):
    """eval_transform random_train (EDGE eval.py's quirk) draws the benchmark's training
    augmentation, for voc2012 EDGE's resized_crop_flip, in extraction and OE-selection caches."""
    from oodflow import training
    from oodflow.io import load_npz, save_npz
    from oodflow.multilabel import steps

    rng = np.random.default_rng(0)
    data = tmp_path / "val.npz"
    save_npz(data, x=rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), y=np.zeros((4, 20), np.uint8))
    config = _selection_config("small_cnn", {"width": 0.25})
    config["multilabel"]["benchmark"] = {"name": "voc2012", "image_size": 32}
    policies, real = [], training.augment
    monkeypatch.setattr(training, "augment", lambda x, p, g: policies.append(p) or real(x, p, g))
    outs = {}
    for transform in ("random_train", "deterministic"):
        config["multilabel"]["benchmark"]["eval_transform"] = transform
        ext, sel = tmp_path / f"e_{transform}.npz", tmp_path / f"s_{transform}.npz"
        steps.extract(config, "r", None, {"val": str(data)}, {"val": str(ext)})
        steps.oe_features(config, None, {"val": str(data)}, {"val": str(sel)})
        outs[transform] = (load_npz(ext)["features"], load_npz(sel)["features"])
    assert policies == ["resized_crop_flip", "resized_crop_flip"]
    for random_f, fixed_f in zip(*outs.values()):
        assert not np.allclose(random_f, fixed_f)
