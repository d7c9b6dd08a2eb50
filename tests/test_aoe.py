"""The AOE training method: OE on attacked outliers (closed forms), units, quirk flags, seeding by
(run seed, epoch, step), and a resumed AOE run ending with the same weights."""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_ood.loss import OutlierExposureLoss
from torch import nn

from oodflow import checkpoint, training
from oodflow.config import validate
from oodflow.methods import AUX_METHODS, build_method
from oodflow.methods.outlier_exposure import OutlierExposure, oe_term
from oodflow.seeding import derive_seed

K = 3
MEAN, STD = (0.5, 0.4), (0.25, 0.5)


def linear(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(8, K)).double().eval()


def with_bn(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(8, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, K)
    ).double()


def batch(seed=1, n=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, 2, 2, generator=g, dtype=torch.float64)
    x_aux = torch.randn(n, 2, 2, 2, generator=g, dtype=torch.float64)
    return x, torch.randint(0, K, (n,), generator=g), x_aux


def oe_closed_form(model, x, y, x_out, lam=0.5):
    with torch.no_grad():
        logits_in, logits_out = model(x), model(x_out)
    ce = float(nn.functional.cross_entropy(logits_in, y))
    return ce + lam * float(oe_term(logits_out))


def test_aoe_is_registered_as_an_aux_method():
    assert "aoe" in AUX_METHODS and build_method("aoe").uses_aux
    with pytest.raises(ValueError, match="auxiliary outliers"):
        build_method("aoe")(linear(), *batch()[:2])


def test_without_attack_it_is_outlier_exposure():
    model, (x, y, x_aux) = linear(), batch()
    for oe_loss in ("hendrycks", "pytorch_ood"):
        loss, logits = build_method("aoe", attack="none", oe_loss=oe_loss)(model, x, y, x_aux)
        ref_loss, ref_logits = OutlierExposure(oe_loss=oe_loss)(model, x, y, x_aux)
        assert float(loss.detach()) == ref_loss.item() and torch.equal(logits, ref_logits)
    # the pytorch_ood reduction is pytorch-ood's OutlierExposureLoss on the concatenated batch
    model = model.float()
    loss, _ = build_method("aoe", attack="none", oe_loss="pytorch_ood")(model, x.float(), y, x_aux.float())
    with torch.no_grad():
        ref = OutlierExposureLoss(alpha=0.5)(
            model(torch.cat([x, x_aux]).float()), torch.cat([y, -torch.ones_like(y)])
        )
    assert loss.item() == pytest.approx(float(ref), rel=1e-6)


def test_loss_is_oe_on_the_eba_attacked_batch():
    model, (x, y, x_aux) = linear(), batch()
    eps = 0.05
    loss, logits = build_method("aoe", attack="eba", eps=eps, lam=0.7)(model, x, y, x_aux)
    w, b = model[1].weight.detach(), model[1].bias.detach()
    p = torch.softmax(x_aux.flatten(1) @ w.T + b, dim=1)
    attacked = x_aux + eps * (p @ w).sign().reshape(x_aux.shape)  # EBA on a linear model, by hand
    assert loss.item() == pytest.approx(oe_closed_form(model, x, y, attacked, lam=0.7), rel=1e-12)
    assert torch.equal(logits, model(x))


def test_attack_uses_a_copy_gradients_and_statistics_come_from_the_oe_step_alone():
    x, y, x_aux = batch(n=6)
    model, twin = with_bn().train(), with_bn().train()
    method = build_method("aoe", attack="fgsm", eps=0.1)
    loss, _ = method(model, x, y, x_aux)
    loss.backward()
    # the same attacked outliers, computed on a separate copy, then plain OE on the twin
    method.set_epoch(0)
    attacked = method.attack(with_bn().train(), x, y, x_aux)
    ref, _ = OutlierExposure()(twin, x, y, attacked)
    ref.backward()
    assert loss.item() == ref.item()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values()))
    assert all(torch.equal(p.grad, q.grad) for p, q in zip(model.parameters(), twin.parameters()))


def test_pixel_units_and_clipping_with_the_benchmark_normalisation():
    model, (x, y, _) = linear(), batch()
    pixels = torch.rand(5, 2, 2, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    mean, std = (torch.tensor(v, dtype=torch.float64).reshape(2, 1, 1) for v in (MEAN, STD))
    x_aux = (pixels - mean) / std
    method = build_method("aoe", attack="eps_gauss", eps=0.1, mean=MEAN, std=STD, clip=False)
    attacked = method.attack(model, x, y, x_aux, torch.Generator().manual_seed(0))
    noise = torch.randn(x_aux.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(attacked * std + mean, pixels + 0.1 * noise)  # eps in pixel units
    clipped = build_method("aoe", attack="eps_gauss", eps=5.0, mean=MEAN, std=STD).attack(
        model, x, y, x_aux, torch.Generator().manual_seed(0)
    )
    back = clipped * std + mean
    assert float(back.min()) == pytest.approx(0.0, abs=1e-12) and float(back.max()) == pytest.approx(1.0)


def test_raw_outliers_quirk_feeds_pixels_to_the_model():
    model, (x, y, _) = linear(), batch()
    pixels = torch.rand(5, 2, 2, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    mean, std = (torch.tensor(v, dtype=torch.float64).reshape(2, 1, 1) for v in (MEAN, STD))
    x_aux = (pixels - mean) / std
    loss, _ = build_method("aoe", attack="none", mean=MEAN, std=STD, raw_outliers=True)(model, x, y, x_aux)
    assert loss.item() == pytest.approx(oe_closed_form(model, x, y, pixels), rel=1e-12)
    eba = build_method("aoe", attack="eba", eps=0.3, mean=MEAN, std=STD, raw_outliers=True)
    attacked = eba.attack(model, x, y, eba.outliers(x_aux))
    assert float(attacked.min()) >= 0.0 and float(attacked.max()) <= 1.0  # clipped to [0, 1] pixels
    unclipped = build_method(
        "aoe", attack="eba", eps=0.3, mean=MEAN, std=STD, raw_outliers=True, clip=False
    ).attack(model, x, y, pixels)
    torch.testing.assert_close((unclipped - pixels).abs(), torch.full_like(pixels, 0.3))


def test_argument_errors_name_the_problem():
    with pytest.raises(ValueError, match="both mean and std"):
        build_method("aoe", mean=MEAN)
    with pytest.raises(ValueError, match="raw_outliers needs the benchmark's mean and std"):
        build_method("aoe", raw_outliers=True)
    with pytest.raises(TypeError, match="method 'aoe': attack 'eba' got unknown parameter.*steps"):
        build_method("aoe", attack="eba", steps=20)
    with pytest.raises(TypeError, match="attack 'fgsm' got unknown parameter.*grad_wrt_inliers"):
        build_method("aoe", attack="fgsm", grad_wrt_inliers=True)
    with pytest.raises(KeyError, match="unknown attack 'pgd2'"):
        build_method("aoe", attack="pgd2")
    method = build_method("aoe", attack="mifgsm", alpha=0.01, steps=3, decay=0.5, grad_wrt_inliers=True)
    a = method.attack
    assert (float(a.alpha), a.steps, a.decay, a.grad_wrt_inliers) == (0.01, 3, 0.5, True)
    assert (a.lam, a.oe_loss) == (0.5, "hendrycks")


def _noise_of_step(method, model, x, y, x_aux):
    return method.attack(model, x, y, x_aux, method.next_generator()) - x_aux


def test_attack_noise_depends_on_run_seed_epoch_and_step_not_on_call_count():
    model, (x, y, x_aux) = linear(), batch()
    a = build_method("aoe", attack="eps_gauss", eps=1.0, seed=4)
    b = build_method("aoe", attack="eps_gauss", eps=1.0, seed=4)
    for _ in range(3):  # a's earlier epoch
        _noise_of_step(a, model, x, y, x_aux)
    a.set_epoch(2, seed=9)
    b.set_epoch(2, seed=9)
    first = _noise_of_step(a, model, x, y, x_aux)
    assert torch.equal(first, _noise_of_step(b, model, x, y, x_aux))
    expected = torch.randn(
        x_aux.shape,
        generator=torch.Generator().manual_seed(derive_seed(9, "aoe-attack", 4, 2, 0)),
        dtype=torch.float64,
    )
    torch.testing.assert_close(first, expected)
    assert not torch.equal(_noise_of_step(a, model, x, y, x_aux), first)  # step 1 differs from step 0
    b.set_epoch(2, seed=10)
    assert not torch.equal(_noise_of_step(b, model, x, y, x_aux), first)  # so does another run seed


# ------------------------------------------------------------------------------------- training
def _config(test_config, epochs=3):
    cfg = validate(test_config)
    run = dict(cfg["runs"]["tiny"], epochs=epochs, batch_size=16, method="aoe")
    run["method_args"] = {"attack": "eps_gauss", "eps": 0.5, "aux_batch_size": 8}
    return {"seed": 0, "benchmark": cfg["benchmark"], "run": run}


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(48, 1, 28, 28, generator=g)
    y = torch.arange(48) % 10
    x += y[:, None, None, None] * 0.3
    aux = training.Split(torch.randn(20, 1, 28, 28, generator=g), torch.zeros(20, dtype=torch.long))
    return training.Split(x, y), training.Split(x[:16], y[:16]), aux


def _train(config, path, log=lambda m: None):
    train, val, aux = _data()
    return training.train(
        config,
        train,
        val,
        num_classes=10,
        device=torch.device("cpu"),
        checkpoint_path=path,
        log=log,
        aux_split=aux,
    )


def test_killed_aoe_run_resumes_to_identical_weights(test_config, tmp_path, monkeypatch):
    config = _config(test_config)
    reference, ref_rows = _train(config, tmp_path / "ref.pt")
    real_save = checkpoint.save

    def save_then_die(path, payload):
        real_save(path, payload)
        if payload["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(training.checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _train(config, tmp_path / "killed.pt")
    monkeypatch.setattr(training.checkpoint, "save", real_save)
    messages = []
    resumed, rows = _train(config, tmp_path / "killed.pt", messages.append)
    assert any("resuming" in m for m in messages)
    assert rows == ref_rows
    ref_state, state = reference.state_dict(), resumed.state_dict()
    assert all(torch.equal(ref_state[k], state[k]) for k in ref_state)
    # the attack noise matters: another attack seed trains other weights
    other = dict(config, run=dict(config["run"], method_args={**config["run"]["method_args"], "seed": 1}))
    changed, _ = _train(other, tmp_path / "other.pt")
    assert not all(torch.equal(ref_state[k], changed.state_dict()[k]) for k in ref_state)
    assert math.isfinite(rows[-1]["train_loss"])


@pytest.mark.parametrize("grad_wrt_inliers", [True, False])
def test_grad_wrt_inliers_skips_the_partial_last_id_batch(
    test_config, tmp_path, monkeypatch, grad_wrt_inliers
):
    """40 ID samples in batches of 16 end with a partial batch of 8 that meets a full outlier batch of 16:
    with the inlier-gradient quirk the reference loop skips it (its step needs equal shapes), else trained."""
    config = _config(test_config, epochs=2)
    args = {
        "attack": "pgd",
        "eps": 0.1,
        "steps": 2,
        "aux_batch_size": 16,
        "grad_wrt_inliers": grad_wrt_inliers,
    }
    config["run"]["method_args"] = args
    train, val, aux = _data()
    train = training.Split(train.x[:40], train.y[:40])
    from oodflow.methods.adversarial_oe import AdversarialOutlierExposure

    sizes, real_call = [], AdversarialOutlierExposure.__call__

    def spy(self, model, x, y, x_aux=None):
        sizes.append((len(x), len(x_aux)))
        return real_call(self, model, x, y, x_aux)

    monkeypatch.setattr(AdversarialOutlierExposure, "__call__", spy)
    _, rows = training.train(
        config,
        train,
        val,
        num_classes=10,
        device=torch.device("cpu"),
        checkpoint_path=tmp_path / "c.pt",
        log=lambda m: None,
        aux_split=aux,
    )
    per_epoch = [(16, 16), (16, 16)] + ([] if grad_wrt_inliers else [(8, 16)])
    assert sizes == per_epoch * 2
    assert all(math.isfinite(r["train_loss"]) and 0 <= r["train_acc"] <= 1 for r in rows)


@pytest.mark.parametrize("augment_outliers", [None, True])
def test_outlier_batches_are_not_augmented_unless_asked(test_config, tmp_path, monkeypatch, augment_outliers):
    """With augment: true the ID batches are shifted; the reference never transforms its GAN outliers, so
    by default every outlier row reaches the method exactly as stored (augment_outliers: true: shifted)."""
    config = _config(test_config, epochs=1)
    config["run"]["augment"] = True
    if augment_outliers is not None:
        config["run"]["method_args"]["augment_outliers"] = augment_outliers
    train, val, aux = _data()
    from oodflow.methods.adversarial_oe import AdversarialOutlierExposure

    seen, real_call = [], AdversarialOutlierExposure.__call__

    def spy(self, model, x, y, x_aux=None):
        seen.append((x.clone(), x_aux.clone()))
        return real_call(self, model, x, y, x_aux)

    monkeypatch.setattr(AdversarialOutlierExposure, "__call__", spy)
    training.train(
        config,
        train,
        val,
        num_classes=10,
        device=torch.device("cpu"),
        checkpoint_path=tmp_path / "c.pt",
        log=lambda m: None,
        aux_split=aux,
    )
    pool, id_pool = aux.x.flatten(1), train.x.flatten(1)

    def stored(batch, rows):  # each row of the batch is one stored row, bit for bit
        return all(bool((rows == r).all(1).any()) for r in batch.flatten(1))

    assert len(seen) == 3 and not all(stored(x, id_pool) for x, _ in seen)  # ID batches are augmented
    untouched = all(stored(x_aux, pool) for _, x_aux in seen)
    assert untouched is (augment_outliers is None)
