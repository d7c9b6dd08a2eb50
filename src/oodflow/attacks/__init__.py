"""Attacks on auxiliary outliers, chosen by name (Adversarial Outlier Exposure; docs/aoe_attacks.md).

Every attack maps a batch of outliers to perturbed outliers in the model's input space,
``attack(model, x_in, y_in, x_out, generator) -> x_out_adv``; see :mod:`oodflow.attacks.outlier`
for the formulas, the defaults (corrected behaviour) and the flags that reproduce the reference's
quirks. Listing and checking names imports no torch.

    >>> ATTACKS.names()
    ['eba', 'eps_gauss', 'fgsm', 'mifgsm', 'none', 'pgd']
"""

from __future__ import annotations

import inspect
from typing import Any

from oodflow.registry import Registry

__all__ = ["ATTACKS", "attack_parameters", "build_attack"]

ATTACKS = Registry(
    "attack",
    {
        "none": "oodflow.attacks.outlier:NoAttack",
        "fgsm": "oodflow.attacks.outlier:FGSM",
        "pgd": "oodflow.attacks.outlier:PGD",
        "mifgsm": "oodflow.attacks.outlier:MIFGSM",
        "eba": "oodflow.attacks.outlier:EBA",
        "eps_gauss": "oodflow.attacks.outlier:EpsGauss",
    },
)


def attack_parameters(name: str) -> list[str]:
    """The keyword parameters the attack ``name`` takes (imports its module, and so torch)."""
    return list(inspect.signature(ATTACKS.get(name)).parameters)


def build_attack(name: str, **params: Any):
    """Instantiate the attack ``name`` with ``params``.

    Raises:
        KeyError: for an unknown name (the message lists the valid ones).
        TypeError: for a parameter the attack does not take (the message lists those it takes).
        ValueError: for a parameter value the attack rejects.
    """
    accepted = attack_parameters(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TypeError(
            f"attack '{name}' got unknown parameter(s) {', '.join(unknown)}; "
            f"valid parameters: {', '.join(accepted)}"
        )
    return ATTACKS.get(name)(**params)
