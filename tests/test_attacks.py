"""Outlier attacks (AOE): closed forms on a linear model, documented directions, the eps-ball and
clip range, quirk flags, determinism, and the model left untouched."""

from __future__ import annotations

import pytest
import torch
from pytorch_ood.loss import OutlierExposureLoss
from torch import nn

from oodflow.attacks import ATTACKS, build_attack
from oodflow.attacks.outlier import MIFGSM, PGD, attack_copy, pixel_space
from oodflow.methods.outlier_exposure import energy, oe_objective

K, SHAPE = 4, (3, 2, 2)
D = 12
GRADIENT_ATTACKS = ("fgsm", "pgd", "mifgsm", "eba")


def linear_model(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(D, K)).double().eval()


def mlp(seed=0, bn=True) -> nn.Module:
    torch.manual_seed(seed)
    layers = [nn.Flatten(), nn.Linear(D, 16)]
    layers += [nn.BatchNorm1d(16)] if bn else []
    layers += [nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, K)]
    return nn.Sequential(*layers).double()


def batch(n_in=6, n_out=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    x_in = torch.rand(n_in, *SHAPE, generator=g, dtype=torch.float64) * 2 - 1
    x_out = torch.rand(n_out, *SHAPE, generator=g, dtype=torch.float64) * 2 - 1
    y_in = torch.randint(0, K, (n_in,), generator=g)
    return x_in, y_in, x_out


def gen(seed=0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def oe_loss(model, x_in, y_in, x_out, reduction="hendrycks"):
    logits = model(torch.cat([x_in, x_out]))
    return float(oe_objective(logits[: len(x_in)], y_in, logits[len(x_in) :], 0.5, reduction))


def weights(model):
    lin = model[1]
    return lin.weight.detach(), lin.bias.detach()


def softmax_linear(model, x):
    w, b = weights(model)
    return torch.softmax(x.flatten(1) @ w.T + b, dim=1)


# ------------------------------------------------------------------------------------ registry
def test_registry_names_and_errors():
    assert ATTACKS.names() == ["eba", "eps_gauss", "fgsm", "mifgsm", "none", "pgd"]
    with pytest.raises(KeyError, match="unknown attack 'cw'; valid names: eba, eps_gauss"):
        build_attack("cw")
    with pytest.raises(
        TypeError, match="attack 'eba' got unknown parameter.*steps; valid parameters: eps, clip"
    ):
        build_attack("eba", steps=3)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        build_attack("fgsm", eps=-0.1)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        build_attack("pgd", steps=0)
    with pytest.raises(ValueError, match="clip needs lo < hi"):
        build_attack("eba", clip=(1.0, 0.0))
    with pytest.raises(ValueError, match="unknown oe_loss 'mean'"):
        build_attack("fgsm", oe_loss="mean")


@pytest.mark.parametrize("name", ATTACKS.names())
def test_none_and_eps_zero_return_the_input_unchanged(name):
    model, (x_in, y_in, x_out) = mlp().eval(), batch()
    clip = (-0.5, 0.5)  # the inputs leave this range: eps = 0 must not clip them either
    assert torch.equal(build_attack(name, eps=0.0, clip=clip)(model, x_in, y_in, x_out, gen()), x_out)
    assert torch.equal(build_attack("none", eps=0.7)(model, x_in, y_in, x_out, gen()), x_out)


# ------------------------------------------------------------------------- single-step closed forms
def test_fgsm_equals_its_closed_form_and_raises_the_oe_loss():
    model, (x_in, y_in, x_out) = linear_model(), batch()
    eps = 1e-3
    adv = build_attack("fgsm", eps=eps)(model, x_in, y_in, x_out)
    # d/dx_j of lam * mean_j(lse f - mean f) for f = W x + b is lam/B * W^T (softmax(f_j) - 1/K)
    w, _ = weights(model)
    expected = x_out + eps * ((softmax_linear(model, x_out) - 1 / K) @ w).sign().reshape(x_out.shape)
    assert torch.equal(adv, expected)
    assert oe_loss(model, x_in, y_in, adv) > oe_loss(model, x_in, y_in, x_out)


def test_eba_equals_its_closed_form_and_lowers_outlier_energy():
    model, (x_in, y_in, x_out) = linear_model(), batch()
    eps = 1e-3
    adv = build_attack("eba", eps=eps)(model, x_in, y_in, x_out)
    # E = -lse(W x + b): dE/dx = -W^T softmax, so the step -eps*sign(dE/dx) is +eps*sign(W^T p)
    w, _ = weights(model)
    expected = x_out + eps * (softmax_linear(model, x_out) @ w).sign().reshape(x_out.shape)
    assert torch.equal(adv, expected)
    with torch.no_grad():
        before, after = energy(model(x_out)), energy(model(adv))
    assert bool((after < before).all())  # every outlier looks more in-distribution


def test_eba_lowers_energy_of_a_nonlinear_model_in_train_mode():
    model, (x_in, y_in, x_out) = mlp(), batch(n_out=32)
    surrogate = attack_copy(model.train())
    adv = build_attack("eba", eps=0.05)(surrogate, x_in, y_in, x_out)
    model.eval()
    with torch.no_grad():
        assert float(energy(model(adv)).mean()) < float(energy(model(x_out)).mean())


def test_pytorch_ood_reduction_matches_pytorch_ood_and_changes_fgsm_under_batch_norm():
    model, (x_in, y_in, x_out) = mlp().float(), batch(n_in=4, n_out=8)
    x_in, x_out = x_in.float(), x_out.float()  # pytorch-ood's loss works in float32 only
    model.train()
    # cross-check: our concatenated-batch reduction is pytorch-ood's OutlierExposureLoss
    logits = torch.randn(12, K, generator=gen(5))
    labels = torch.cat([y_in, torch.full((8,), -1)])
    ours = oe_objective(logits[:4], y_in, logits[4:], 0.5, "pytorch_ood")
    assert float(ours) == pytest.approx(float(OutlierExposureLoss(alpha=0.5)(logits, labels)), rel=1e-6)
    hendrycks = oe_objective(logits[:4], y_in, logits[4:], 0.5, "hendrycks")
    assert float(hendrycks) != pytest.approx(float(ours), rel=1e-3)
    # FGSM with that loss steps along the sign of pytorch-ood's gradient (dropout left out)
    no_dropout = nn.Sequential(*[m for m in model if not isinstance(m, nn.Dropout)])
    xo = x_out.clone().requires_grad_(True)
    loss = OutlierExposureLoss(alpha=0.5)(no_dropout(torch.cat([x_in, xo])), labels)
    expected = x_out + 0.1 * torch.autograd.grad(loss, xo)[0].sign()
    adv_ood = build_attack("fgsm", eps=0.1, oe_loss="pytorch_ood")(attack_copy(no_dropout), x_in, y_in, x_out)
    adv_hen = build_attack("fgsm", eps=0.1)(attack_copy(no_dropout), x_in, y_in, x_out)
    assert torch.equal(adv_ood, expected)
    # with unequal batch sizes, batch norm couples the ID term to the outliers: the balance matters
    assert not torch.equal(adv_ood, adv_hen)


# --------------------------------------------------------------------------------- PGD, MI-FGSM
@pytest.mark.parametrize("name", ["pgd", "mifgsm"])
def test_iterative_attacks_stay_in_the_ball_and_clip_range_and_beat_random_noise(name):
    model, (x_in, y_in, x_out) = mlp(bn=False).eval(), batch(n_out=16)
    x_out = x_out * 0.5  # inside the clip range
    eps = 0.3
    lo, hi = (-0.6, -0.7, -0.8), (0.6, 0.7, 0.8)
    adv = build_attack(name, eps=eps, alpha=0.05, steps=10, clip=(lo, hi))(model, x_in, y_in, x_out, gen())
    delta = adv - x_out
    assert float(delta.abs().max()) <= eps + 1e-12
    lo_t, hi_t = (torch.tensor(v, dtype=torch.float64).reshape(3, 1, 1) for v in (lo, hi))
    assert bool(((adv >= lo_t) & (adv <= hi_t)).all())
    assert bool((adv == lo_t).any() or (adv == hi_t).any())  # the range did bind somewhere
    free = build_attack(name, eps=eps, alpha=0.05, steps=10)(model, x_in, y_in, x_out, gen())
    assert float((free - x_out).abs().max()) <= eps + 1e-12
    random_sign = torch.randint(0, 2, x_out.shape, generator=gen(3)).double() * 2 - 1
    clean = oe_loss(model, x_in, y_in, x_out)
    noisy = oe_loss(model, x_in, y_in, x_out + eps * random_sign)
    assert oe_loss(model, x_in, y_in, free) > max(clean, noisy)


@pytest.mark.parametrize("eps, steps", [(10.0, 1), (10.0, 5), (0.04, 5)])
def test_grad_wrt_inliers_quirk_equals_its_closed_form(eps, steps):
    """With no batch coupling the inliers' gradient does not depend on the iterate, so the quirk is
    ``x_out + clamp(delta_0 + steps * alpha * sign(g_in), -eps, eps)``; a large eps exposes the step
    count, a small one the projection."""
    model, (x_in, y_in, x_out) = linear_model(), batch()
    alpha = 0.01
    adv = build_attack("pgd", eps=eps, alpha=alpha, steps=steps, grad_wrt_inliers=True)(
        model, x_in, y_in, x_out, gen(7)
    )
    w, _ = weights(model)
    # d mean CE / d x_in_i = W^T (softmax(f_i) - onehot(y_i)) / B_in (the OE term ignores x_in)
    g_in = (softmax_linear(model, x_in) - nn.functional.one_hot(y_in, K)) @ w
    delta0 = (2 * torch.rand(x_out.shape, generator=gen(7), dtype=torch.float64) - 1) * eps
    expected = x_out + torch.clamp(delta0 + steps * alpha * g_in.sign().reshape(x_out.shape), -eps, eps)
    torch.testing.assert_close(adv, expected, rtol=0, atol=1e-12)
    corrected = build_attack("pgd", eps=eps, alpha=alpha, steps=steps)(model, x_in, y_in, x_out, gen(7))
    assert not torch.allclose(corrected, adv)
    with pytest.raises(ValueError, match="needs equal batch shapes"):
        build_attack("pgd", grad_wrt_inliers=True)(model, x_in, y_in, x_out[:3], gen())


def test_mifgsm_without_momentum_is_pgd_and_momentum_changes_the_path():
    model, (x_in, y_in, x_out) = mlp(bn=False).eval(), batch()
    kw = dict(eps=0.5, alpha=0.1, steps=6)
    pgd = PGD(**kw)(model, x_in, y_in, x_out, gen(2))
    assert torch.equal(MIFGSM(decay=0.0, **kw)(model, x_in, y_in, x_out, gen(2)), pgd)
    assert not torch.equal(MIFGSM(decay=1.0, **kw)(model, x_in, y_in, x_out, gen(2)), pgd)


def test_mifgsm_direction_normalises_each_sample_and_adds_momentum():
    g = torch.tensor([[1.0, -3.0], [0.0, 0.0]])
    state = torch.tensor([[-1.0, 2.0], [1.0, -1.0]])
    m, new_state = MIFGSM(decay=0.5).direction(g, state)
    # sample 0: g / mean|g| = [0.5, -1.5], plus 0.5 * state; sample 1: a zero gradient stays zero
    assert torch.equal(m, torch.tensor([[0.0, -0.5], [0.5, -0.5]])) and torch.equal(new_state, m)


def _reference_mifgsm(model, x_in, y_in, x_out, eps, alpha, steps, decay, generator):
    """A hand-written MI-FGSM on the OE loss (Hendrycks reduction, lam 0.5), written from the formulas."""
    x = x_out + (torch.rand(x_out.shape, generator=generator, dtype=x_out.dtype) * 2 - 1) * eps
    momentum = torch.zeros_like(x_out)
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        logits = model(torch.cat([x_in, x]))
        out = logits[len(x_in) :]
        loss = (
            nn.functional.cross_entropy(logits[: len(x_in)], y_in)
            + 0.5 * (torch.logsumexp(out, 1) - out.mean(1)).mean()
        )
        (g,) = torch.autograd.grad(loss, x)
        momentum = decay * momentum + g / g.abs().mean(dim=(1, 2, 3), keepdim=True)
        x = x.detach() + alpha * momentum.sign()
        x = torch.min(torch.max(x, x_out - eps), x_out + eps)
    return x


def test_mifgsm_matches_a_hand_written_reference():
    model, (x_in, y_in, x_out) = mlp(bn=False).eval(), batch()
    ours = MIFGSM(eps=0.2, alpha=0.03, steps=8, decay=0.7)(model, x_in, y_in, x_out, gen(5))
    ref = _reference_mifgsm(model, x_in, y_in, x_out, 0.2, 0.03, 8, 0.7, gen(5))
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)


def test_clip_start_only_quirk_clips_the_start_but_not_the_iterates():
    model, (x_in, y_in, x_out) = linear_model(), batch()
    x_out = x_out.clamp(-0.9, 0.9)
    kw = dict(eps=0.5, alpha=0.2, steps=4, clip=(-1.0, 1.0))
    quirk = build_attack("pgd", clip_start_only=True, **kw)(model, x_in, y_in, x_out, gen(4))
    assert float(quirk.abs().max()) > 1.0  # iterates left the range
    start_only = PGD(eps=0.5, alpha=0.2, steps=1, clip=(-1.0, 1.0), clip_start_only=True)
    # one step from the clipped start: within alpha of the clamped random start
    start = torch.clamp(
        x_out + (2 * torch.rand(x_out.shape, generator=gen(4), dtype=torch.float64) - 1) * 0.5, -1, 1
    )
    one = start_only(model, x_in, y_in, x_out, gen(4))
    assert float((one - start).abs().max()) <= 0.2 + 1e-12
    corrected = build_attack("pgd", **kw)(model, x_in, y_in, x_out, gen(4))
    assert float(corrected.abs().max()) <= 1.0


# ---------------------------------------------------------------------------------- eps_gauss
def test_eps_gauss_per_sample_and_shared_noise():
    model, (x_in, y_in, x_out) = mlp().eval(), batch()
    per_sample = build_attack("eps_gauss", eps=0.2)(model, x_in, y_in, x_out, gen(9))
    expected = x_out + 0.2 * torch.randn(x_out.shape, generator=gen(9), dtype=torch.float64)
    torch.testing.assert_close(per_sample, expected, rtol=0, atol=1e-15)
    shared = build_attack("eps_gauss", eps=0.2, shared_noise=True)(model, x_in, y_in, x_out, gen(9))
    noise = shared - x_out
    torch.testing.assert_close(noise, noise[:1].expand_as(noise), rtol=0, atol=1e-15)
    torch.testing.assert_close(
        noise[0], 0.2 * torch.randn(SHAPE, generator=gen(9), dtype=torch.float64), rtol=0, atol=1e-15
    )
    rows = (per_sample - x_out).flatten(1)
    assert not torch.allclose(rows[0], rows[1])
    clipped = build_attack("eps_gauss", eps=5.0, clip=(-1.0, 1.0))(model, x_in, y_in, x_out, gen(9))
    assert float(clipped.abs().max()) == 1.0


def test_per_channel_eps_in_pixel_units():
    mean, std = (0.5, 0.4, 0.3), (0.25, 0.5, 0.2)
    scale, (lo, hi) = pixel_space(mean, std)
    assert scale == pytest.approx((4.0, 2.0, 5.0))
    assert lo == pytest.approx((-2.0, -0.8, -1.5)) and hi == pytest.approx((2.0, 1.2, 3.5))
    model, (x_in, y_in, x_out) = linear_model(), batch()
    adv = build_attack("eba", eps=tuple(0.01 * s for s in scale))(model, x_in, y_in, x_out)
    step = (adv - x_out).abs().amax(dim=(0, 2, 3))
    torch.testing.assert_close(step, torch.tensor([0.04, 0.02, 0.05], dtype=torch.float64))
    with pytest.raises(ValueError, match="3 per-channel values do not fit"):
        build_attack("eba", eps=(0.1, 0.1, 0.1))(model, x_in, y_in, x_out.flatten(1))
    with pytest.raises(ValueError, match="std must be positive"):
        pixel_space((0.5,), (0.0,))


# ------------------------------------------------------------------- side effects and determinism
@pytest.mark.parametrize("name", ATTACKS.names())
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_attacks_leave_the_model_alone(name, mode):
    model, (x_in, y_in, x_out) = mlp(), batch()
    model.train(mode == "train")
    nn.functional.cross_entropy(model(x_in), y_in).backward()  # pre-existing gradients
    state = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    target = attack_copy(model) if mode == "train" else model
    attack = build_attack(name, eps=0.1, **({"steps": 2} if name in ("pgd", "mifgsm") else {}))
    rng = torch.get_rng_state()
    adv = attack(target, x_in, y_in, x_out, gen())
    if mode == "eval":  # with a generator, no global randomness is used (no dropout in eval mode)
        assert torch.equal(torch.get_rng_state(), rng)
    assert not adv.requires_grad
    assert model.training == (mode == "train") and target.training == model.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    assert all(p.requires_grad for p in model.parameters())


def test_attack_copy_shields_batch_norm_statistics():
    model, (x_in, y_in, x_out) = mlp(), batch()
    model.train()
    before = model[2].running_mean.clone()
    build_attack("eba", eps=0.1)(attack_copy(model), x_in, y_in, x_out)
    assert torch.equal(model[2].running_mean, before)
    build_attack("eba", eps=0.1)(model, x_in, y_in, x_out)  # attacking the model itself updates them
    assert not torch.equal(model[2].running_mean, before)
    surrogate = attack_copy(model)
    assert surrogate.training and not any(p.requires_grad for p in surrogate.parameters())


@pytest.mark.parametrize("name", ["pgd", "mifgsm", "eps_gauss"])
def test_randomness_follows_the_generator(name):
    model, (x_in, y_in, x_out) = mlp(bn=False).eval(), batch()
    attack = build_attack(name, eps=0.2, **({"steps": 2} if name != "eps_gauss" else {}))
    a = attack(model, x_in, y_in, x_out, gen(11))
    assert torch.equal(a, attack(model, x_in, y_in, x_out, gen(11)))
    assert not torch.equal(a, attack(model, x_in, y_in, x_out, gen(12)))


def test_inputs_from_inference_mode_are_accepted():
    model, (x_in, y_in, x_out) = linear_model(), batch()
    with torch.inference_mode():
        adv = build_attack("fgsm", eps=1e-3)(model, x_in.clone(), y_in, x_out.clone())
    assert torch.equal(adv, build_attack("fgsm", eps=1e-3)(model, x_in, y_in, x_out))
