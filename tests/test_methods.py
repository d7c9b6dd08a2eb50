"""Training objectives: closed-form values on hand-made logits, margins, and where gradients flow."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from oodflow.methods import AUX_METHODS, METHODS, build_method
from oodflow.methods.outlier_exposure import EnergyFineTune, OutlierExposure, oe_term


class Fixed(nn.Module):
    """Returns preset logits (row i of ``table`` for input value i) through a learnable scale."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.scale * self.table[x.long().flatten()]


def test_oe_term_is_the_cross_entropy_to_uniform():
    assert float(oe_term(torch.zeros(3, 4))) == pytest.approx(math.log(4))  # its minimum, log K
    big = torch.tensor([[100.0, 0.0, 0.0, 0.0]])
    # lse ~ 100, mean = 25 -> 75
    assert float(oe_term(big)) == pytest.approx(75.0, abs=1e-4)


def test_outlier_exposure_equals_its_formula():
    table = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, -1.0]])
    model = Fixed(table)
    x, y, x_aux = torch.tensor([0.0, 1.0]), torch.tensor([0, 1]), torch.tensor([2.0])
    loss, logits = OutlierExposure(lam=0.5)(model, x, y, x_aux)
    ce = (-math.log(math.exp(2) / (math.exp(2) + 1)) - math.log(math.e / (1 + math.e))) / 2
    oe = math.log(math.exp(3) + math.exp(-1)) - 1.0
    assert float(loss.detach()) == pytest.approx(ce + 0.5 * oe, rel=1e-6)
    assert torch.equal(logits, table[:2])


def test_energy_fine_tune_margins():
    method = EnergyFineTune(lam=0.1, m_in=-5.0, m_out=-1.0)
    logits_in = torch.tensor([[10.0, 0.0], [0.0, 0.0]])  # E ~ -10 (meets m_in) and -log 2 (4.307 above)
    logits_out = torch.tensor(
        [[-5.0, -5.0], [2.0, 2.0]]
    )  # E = 5 - log 2 (meets m_out), -2 - log 2 (1.693 below)
    expected = (0.0 + (5 - math.log(2)) ** 2) / 2 + (0.0 + (1 + math.log(2)) ** 2) / 2
    assert float(method.regulariser(logits_in, logits_out)) == pytest.approx(expected, rel=1e-5)
    satisfied = EnergyFineTune(m_in=0.0, m_out=1.0)
    assert float(satisfied.regulariser(logits_in, torch.full((1, 2), -100.0))) == 0.0
    with pytest.raises(ValueError, match="m_in must be below m_out"):
        EnergyFineTune(m_in=0.0, m_out=-1.0)


def test_gradients_reach_the_model_only_through_the_loss_terms():
    table = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    model = Fixed(table)
    x, y, x_aux = torch.tensor([0.0]), torch.tensor([0]), torch.tensor([1.0])
    loss, _ = EnergyFineTune(lam=0.1, m_in=-50.0, m_out=50.0)(model, x, y, x_aux)
    loss.backward()
    ce_only = Fixed(table)
    nn.functional.cross_entropy(ce_only(x), y).backward()
    # both hinges are active here (ID energy above m_in, outlier energy below m_out)
    assert model.scale.grad is not None and model.scale.grad != ce_only.scale.grad


def test_energy_fine_tune_defaults_are_liu_et_al():
    """energy_ood's train.py: lambda_E = 0.1, argparse margins m_in = -25, m_out = -7 (also by name)."""
    method = EnergyFineTune()
    assert (method.lam, method.m_in, method.m_out) == (0.1, -25.0, -7.0)
    built = build_method("energy_ft")
    assert isinstance(built, EnergyFineTune) and (built.lam, built.m_in, built.m_out) == (0.1, -25.0, -7.0)


@pytest.mark.parametrize("lam", [0.1, 0.7, 0.0])
def test_energy_fine_tune_loss_is_ce_plus_lambda_times_both_hinges(lam):
    """L = CE(f(x_in), y) + lam * (mean relu(E_in - m_in)^2 + mean relu(m_out - E_out)^2), E = -lse f,
    re-derived on random logits with both hinges active."""
    g = torch.Generator().manual_seed(int(lam * 10))
    table = torch.randn(7, 4, generator=g, dtype=torch.float64) * 3
    model = Fixed(table)
    x, y, x_aux = torch.arange(4.0), torch.tensor([0, 3, 1, 2]), torch.arange(4.0, 7.0)
    m_in, m_out = -8.0, 1.0  # E_in is about -lse, -3 to -6 here: above m_in
    loss, logits = EnergyFineTune(lam=lam, m_in=m_in, m_out=m_out)(model, x, y, x_aux)
    e_in, e_out = -torch.logsumexp(table[:4], 1), -torch.logsumexp(table[4:], 1)
    hinge = (e_in - m_in).clamp_min(0).pow(2).mean() + (m_out - e_out).clamp_min(0).pow(2).mean()
    assert float((e_in - m_in).clamp_min(0).min()) > 0 and float((m_out - e_out).clamp_min(0).min()) > 0
    expected = nn.functional.cross_entropy(table[:4], y) + lam * hinge
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-6)
    assert torch.equal(logits.detach(), table[:4])


def test_aux_methods_listed_for_the_workflow_and_need_outliers():
    assert AUX_METHODS == {n for n in METHODS.names() if METHODS.get(n).uses_aux}
    with pytest.raises(ValueError, match="auxiliary outliers"):
        build_method("oe")(Fixed(torch.eye(2)), torch.tensor([0.0]), torch.tensor([0]))
