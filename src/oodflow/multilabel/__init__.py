"""Multi-label OOD detection (EDGE, AAAI 2025; JointEnergy, NeurIPS 2021) as its own sub-workflow.

Importing this package imports neither torch nor scikit-learn: the registries below hold lazy
``"module:attr"`` entries, so the workflow validates the ``multilabel:`` config section cheaply.

* :data:`ML_BENCHMARKS`: multi-label ID benchmarks (the embedded ``mnist5k-ml``, the catalog
  ``voc2012``, ``coco2014``, ``nuswide``), see :mod:`oodflow.multilabel.benchmarks`;
* :data:`ML_OBJECTIVES`: training objectives ``bce``, ``oe_ml``, ``energy_ml``, ``edge``
  (:mod:`oodflow.multilabel.objectives`);
* :data:`ML_SCORES`: post-hoc scores on the feature cache, all "higher = more ID"
  (:mod:`oodflow.multilabel.scores`).
"""

from __future__ import annotations

from oodflow.registry import Registry

_B = "oodflow.multilabel.benchmarks"

ML_BENCHMARKS = Registry(
    "multi-label benchmark",
    {
        "mnist5k-ml": f"{_B}:MNIST5K_ML",
        "voc2012": f"{_B}:VOC2012",
        "coco2014": f"{_B}:COCO2014",
        "nuswide": f"{_B}:NUSWIDE",
    },
)

ML_OBJECTIVES = Registry(
    "multi-label objective",
    {
        "bce": "oodflow.multilabel.objectives:BCE",
        "oe_ml": "oodflow.multilabel.objectives:OutlierExposureML",
        "energy_ml": "oodflow.multilabel.objectives:EnergyML",
        "edge": "oodflow.multilabel.objectives:EDGE",
    },
)

#: Objectives that train on the OE pool (the workflow gives them ``oe.npz``); a test checks it.
ML_OE_OBJECTIVES = frozenset({"oe_ml", "energy_ml", "edge"})

ML_SCORES = Registry(
    "multi-label score",
    {
        "joint_energy": "oodflow.multilabel.scores:JointEnergy",
        "max_energy": "oodflow.multilabel.scores:MaxEnergy",
        "maxlogit": "oodflow.multilabel.scores:MaxLogitML",
        "max_sigmoid": "oodflow.multilabel.scores:MaxSigmoid",
        "knn": "oodflow.multilabel.scores:KNNML",
        "mahalanobis": "oodflow.multilabel.scores:MahalanobisML",
    },
)

__all__ = ["ML_BENCHMARKS", "ML_OBJECTIVES", "ML_OE_OBJECTIVES", "ML_SCORES"]
