"""Adversarial OOD evaluation: the FGSM step on test inputs (closed form), eps = 0 as the clean
metrics, the never-reset (accumulate) quirk on a hand-made example, and the score convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_ood.detector import EnergyBased, MaxSoftmax
from torch import nn

from oodflow.adversarial import adversarial_auroc_table, adversarial_logits, adversarial_scores, logit_scores
from oodflow.metrics import auroc, ood_metrics

K = 4


def linear(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, K)).double()


def inputs(n=20, seed=1, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 2, 2, generator=g, dtype=torch.float64) + shift


def test_fgsm_step_away_from_the_target_class_closed_form():
    model, x = linear(), inputs()
    eps = [0.0, 0.05, 0.3]
    logits = adversarial_logits(model, x, eps, target=2, batch_size=7)
    w, b = model[1].weight.detach(), model[1].bias.detach()
    p = torch.softmax(x.flatten(1) @ w.T + b, dim=1)
    direction = ((p - nn.functional.one_hot(torch.tensor(2), K)) @ w).sign().reshape(x.shape)  # dCE/dx
    for k, e in enumerate(eps):
        expected = (x + e * direction).flatten(1) @ w.T + b
        np.testing.assert_allclose(logits[k], expected.numpy(), rtol=1e-12, atol=1e-12)
    # -log p_target is convex in x for a linear model: every step lowers the target's probability
    log_p = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64), dim=2)[:, :, 2]
    assert bool((log_p[1] < log_p[0]).all() and (log_p[2] < log_p[1]).all())


def test_eps_zero_gives_the_clean_scores_and_metrics():
    model = linear()
    x_id, x_ood = inputs(30, seed=1, shift=1.0), inputs(25, seed=2)
    eps = [0.0, 0.2]
    id_scores = adversarial_scores(model, x_id, eps, batch_size=64)
    ood_scores = adversarial_scores(model, x_ood, eps, batch_size=64)
    with torch.no_grad():
        clean_id = logit_scores(model(x_id).numpy())
        clean_ood = logit_scores(model(x_ood).numpy())
    for name in ("msp", "energy"):
        np.testing.assert_array_equal(id_scores[name][0], clean_id[name])
        np.testing.assert_array_equal(ood_scores[name][0], clean_ood[name])
    rows = adversarial_auroc_table(eps, id_scores, {"noise": ood_scores})
    assert [(r["ood_set"], r["score"], r["eps"]) for r in rows] == [
        ("noise", "msp", 0.0),
        ("noise", "msp", 0.2),
        ("noise", "energy", 0.0),
        ("noise", "energy", 0.2),
    ]
    for r in rows:
        k = eps.index(r["eps"])
        expected = ood_metrics(id_scores[r["score"]][k], ood_scores[r["score"]][k])
        assert {m: r[m] for m in expected} == expected
    clean_rows = [r for r in rows if r["eps"] == 0.0]
    assert clean_rows[0]["AUROC"] == auroc(clean_id["msp"], clean_ood["msp"])
    assert clean_rows[1]["AUROC"] == auroc(clean_id["energy"], clean_ood["energy"])


def test_accumulate_quirk_scores_the_union_of_all_smaller_eps():
    eps = [0.0, 0.5]
    id_scores = {"msp": np.array([[3.0, 4.0], [0.0, 1.0]])}
    ood_scores = {"set": {"msp": np.array([[1.0, 2.0], [2.0, 3.0]])}}
    fresh = adversarial_auroc_table(eps, id_scores, ood_scores)
    assert [r["AUROC"] for r in fresh] == [1.0, 0.0]
    # union at eps 0.5: ID {3, 4, 0, 1} vs OOD {1, 2, 2, 3}: 3.5 + 4 + 0 + 0.5 wins of 16 pairs
    union = adversarial_auroc_table(eps, id_scores, ood_scores, accumulate=True)
    assert [r["AUROC"] for r in union] == [1.0, 0.5]
    assert union[1]["FPR@95"] == ood_metrics([3, 4, 0, 1], [1, 2, 2, 3])["FPR@95"]


def test_scores_follow_the_project_sign_convention():
    logits = torch.randn(2, 6, K, generator=torch.Generator().manual_seed(0))
    scores = logit_scores(logits.numpy(), ("msp", "energy", "maxlogit"))
    assert scores["msp"].shape == (2, 6)
    flat = logits.reshape(-1, K)
    # pytorch-ood's detectors return outlier scores: the negation of ours
    np.testing.assert_allclose(scores["msp"].ravel(), -MaxSoftmax.score(flat).numpy(), rtol=1e-6)
    np.testing.assert_allclose(scores["energy"].ravel(), -EnergyBased.score(flat).numpy(), rtol=1e-6)
    np.testing.assert_allclose(scores["maxlogit"].ravel(), flat.max(1).values.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="score\\(s\\) knn need more than logits"):
        logit_scores(logits.numpy(), ["knn"])


def test_model_mode_and_gradients_are_left_alone_and_batches_do_not_matter():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(12, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, K)
    ).double()
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = inputs()
    one = adversarial_logits(model, x, [0.1], batch_size=len(x))
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # eval mode: no BN update
    np.testing.assert_allclose(adversarial_logits(model, x, [0.1], batch_size=3), one, rtol=1e-6, atol=1e-6)


def test_pixel_units_and_clip():
    identity = nn.Sequential(nn.Flatten(), nn.Linear(12, 12)).double()  # logits = the input itself
    with torch.no_grad():
        identity[1].weight.copy_(torch.eye(12))
        identity[1].bias.zero_()
    x = inputs().clamp(-0.5, 0.5)
    scale, clip = (4.0, 2.0, 1.0), ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))
    logits = adversarial_logits(identity, x, [0.1, 10.0], eps_scale=scale)
    step = np.abs(logits[0] - x.flatten(1).numpy()).reshape(-1, 3, 4)
    np.testing.assert_allclose(step.min(axis=(0, 2)), [0.4, 0.2, 0.1], rtol=1e-12)
    np.testing.assert_allclose(step.max(axis=(0, 2)), [0.4, 0.2, 0.1], rtol=1e-12)
    assert np.abs(logits[1]).max() > 39.5  # unclipped without a clip range
    clipped = adversarial_logits(identity, x, [10.0], eps_scale=scale, clip=clip)[0]
    np.testing.assert_array_equal(np.abs(clipped), np.ones_like(clipped))


def test_errors():
    model, x = linear(), inputs()
    with pytest.raises(ValueError, match="target 7 is not a class index of a 4-class model"):
        adversarial_logits(model, x, [0.1], target=7)
    with pytest.raises(ValueError, match="eps_list must be non-empty"):
        adversarial_logits(model, x, [-0.1])
    with pytest.raises(ValueError, match="ID scores 'msp' must be \\(2, N\\)"):
        adversarial_auroc_table([0.0, 0.1], {"msp": np.zeros((1, 3))}, {"s": {"msp": np.zeros((2, 3))}})
    with pytest.raises(ValueError, match="has score 'energy' but the ID scores do not"):
        adversarial_auroc_table([0.0], {"msp": np.zeros((1, 3))}, {"s": {"energy": np.zeros((1, 3))}})
