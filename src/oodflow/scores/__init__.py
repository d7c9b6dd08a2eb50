"""Post-hoc OOD scores, chosen by name.

Sign convention: every score returns "higher = more in-distribution (ID)" (float64, one value per
sample). Detectors that return outlier scores (pytorch-ood) equal the negation of ours.

Importing this package does not import torch: :data:`SCORES` holds lazy ``"module:attr"``
entries and only the network scores (``odin``, ``cores``) import torch, when it is first built.

    >>> SCORES.names()  # doctest: +NORMALIZE_WHITESPACE
    ['cores', 'energy', 'joint_energy', 'knn', 'mahalanobis', 'mahalanobis_pooled', 'maxlogit', 'msp',
     'odin', 'react', 'ssd', 'vim']
"""

from __future__ import annotations

import inspect
from typing import Any

from oodflow.registry import Registry
from oodflow.scores.base import Cache, Head, NetworkScore, Score

__all__ = ["NETWORK_SCORES", "SCORES", "Cache", "Head", "NetworkScore", "Score", "build_score"]

SCORES = Registry(
    "score",
    {
        "msp": "oodflow.scores.logit_based:MSP",
        "maxlogit": "oodflow.scores.logit_based:MaxLogit",
        "energy": "oodflow.scores.logit_based:Energy",
        "joint_energy": "oodflow.scores.logit_based:JointEnergy",
        "mahalanobis": "oodflow.scores.distance_based:Mahalanobis",
        "mahalanobis_pooled": "oodflow.scores.distance_based:MahalanobisPooled",
        "ssd": "oodflow.scores.distance_based:SSD",
        "knn": "oodflow.scores.distance_based:KNN",
        "react": "oodflow.scores.head_based:ReAct",
        "vim": "oodflow.scores.head_based:ViM",
        "odin": "oodflow.scores.odin:ODIN",
        "cores": "oodflow.scores.cores:CORES",
    },
)

#: Scores that re-run the network (the workflow gives them the stored inputs and a GPU); kept
#: here so the workflow can tell without importing torch. A test checks it against the classes.
NETWORK_SCORES = frozenset({"odin", "cores"})


def build_score(name: str, **params: Any) -> Score:
    """Instantiate the score ``name`` with ``params``.

    Raises:
        KeyError: for an unknown name (the message lists the valid ones).
        TypeError: for a parameter the score does not take, or a missing required one; the
            message names the score and its parameters.
        ValueError: for a parameter value the score rejects.
    """
    cls = SCORES.get(name)
    signature = inspect.signature(cls)
    accepted = list(signature.parameters)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TypeError(
            f"score '{name}' got unknown parameter(s) {', '.join(unknown)}; "
            f"valid parameters: {', '.join(accepted) or '(none)'}"
        )
    missing = [
        p.name
        for p in signature.parameters.values()
        if p.default is inspect.Parameter.empty and p.name not in params
    ]
    if missing:
        raise TypeError(f"score '{name}' is missing required parameter(s) {', '.join(missing)}")
    return cls(**params)
