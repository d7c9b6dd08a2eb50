"""Open-set recognition (OSR): DIAS against softmax and ARPL on the published splits (issue 8).

Modules: :mod:`~oodflow.osr.splits` (split tables, known/unknown per benchmark),
:mod:`~oodflow.osr.data` (the stored known/unknown arrays), :mod:`~oodflow.osr.networks`
(classifier32 with ABN, DCGAN), :mod:`~oodflow.osr.losses` and :mod:`~oodflow.osr.methods`
(softmax, ARPL, ARPL+CS, DIAS), :mod:`~oodflow.osr.train` (the loop), :mod:`~oodflow.osr.evaluate`
(accuracy, AUROC, OSCR, open-set F1, post-hoc scores) and :mod:`~oodflow.osr.report` (tables, figure).

Quirks of the reference (DIAS ``osr.py``; docs/osr.md): inputs are ``ToTensor()`` only (no mean/std
normalisation), reproduced; evaluation happens once after the last epoch without model selection,
reproduced; the log-writing crash (``open(path, '.txt', 'w')``, fatal after trial 0 for every dataset
but cifar100) is not reproduced: every trial runs and writes its metrics.

Importing this package imports no torch: the workflow lists and checks method names with it.
"""

from oodflow.registry import Registry

OSR_METHODS = Registry(
    "OSR method",
    {
        "softmax": "oodflow.osr.methods:Softmax",
        "arpl": "oodflow.osr.methods:ARPL",
        "arpl_cs": "oodflow.osr.methods:ARPLConfusingSamples",
        "dias": "oodflow.osr.methods:DIAS",
    },
)

#: Each method's hyper-parameters with the paper defaults (docs/osr.md; ARPL's ``weight_pl`` 0.1,
#: ``beta`` 0.1), so the config is checked and completed without importing torch. A test keeps them
#: equal to the classes' signatures.
METHOD_DEFAULTS = {
    "softmax": {"temp": 1.0},
    "arpl": {"weight_pl": 0.1, "temp": 1.0},
    "arpl_cs": {"weight_pl": 0.1, "temp": 1.0, "beta": 0.1, "gan_lr": 0.0002, "reuse_fakes": True},
    "dias": {
        "beta": 0.1,
        "fake_ratio": 0.1,
        "pull_ratio": 1.0,
        "smoothing": 0.5,
        "smoothing2": 1.0,
        "temp": 1.0,
        "gan_lr": 0.0002,
        "reuse_fakes": True,
    },
}

#: Each method's own evaluation protocol: the score its paper's AUROC and OSCR are computed with.
#: DIAS (and its softmax baseline) score with the MSP ``max softmax(z / T)``; ARPL's ``test``
#: (iCGY96/ARPL ``core/test.py``) with the max of the raw reciprocal-point logits, ``max_k z_k``
#: (``maxlogit``). Every method is evaluated with both; the tables and the scorecard compare each
#: paper's number with the method's own.
PROTOCOL_SCORES = {"softmax": "msp", "arpl": "maxlogit", "arpl_cs": "maxlogit", "dias": "msp"}

#: Named training recipes (``osr.recipes: {method: recipe}``) that replace keys of ``osr.train`` for one
#: method, so one config can train each method on its own paper's schedule:
#:
#: * ``arpl``: ARPL's ``osr.py`` (iCGY96/ARPL@3ede8b38): 100 epochs, batch 64, SGD lr 0.1 momentum 0.9
#:   weight decay 1e-4, ``MultiStepLR([30, 60, 90, 120])`` x 0.1; on Tiny-ImageNet its Adam branch
#:   (lr 0.001, no weight decay; the 64-px input of that branch is not part of the recipe).
#: * ``dias_adam``: DIAS's ``--optimizer adam`` branch (wjun0830/Difficulty-Aware-Simulator@533cef7c
#:   ``osr.py``): Adam lr 0.001, no weight decay, ``MultiStepLR([epochs // 2])`` x 0.1. (The
#:   ``optimizer: adam`` of ``osr.train`` alone is Adam with the block's lr, weight decay and milestones.)
#:
#: A recipe never trains longer than ``osr.train.epochs`` (so a smoke run's one epoch holds).
RECIPES = ("arpl", "dias_adam")


def recipe_train(name: str, train, dataset: str) -> dict:
    """``osr.train`` with the keys of recipe ``name`` (see :data:`RECIPES`) for ``dataset``."""
    out = dict(train)
    if name == "arpl":
        out.update(epochs=min(100, train["epochs"]), batch_size=64, milestones=[30, 60, 90, 120], gamma=0.1)
        if dataset == "tinyimagenet":
            out.update(optimizer="adam", lr=0.001, weight_decay=0.0)
        else:
            out.update(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=0.0001)
    elif name == "dias_adam":
        out.update(optimizer="adam", lr=0.001, weight_decay=0.0, gamma=0.1)
        out["milestones"] = [max(1, out["epochs"] // 2)]
    else:
        raise ValueError(f"unknown OSR recipe '{name}'; valid: {', '.join(RECIPES)}")
    return out


#: Post-hoc scores of the spine that work on an OSR feature cache (no network, no linear head:
#: ARPL's logits are not a linear layer of the embedding).
OSR_SCORES = ("msp", "maxlogit", "energy", "knn", "mahalanobis")


def build_method(name: str, num_classes: int, train, **hparams):
    """The OSR method ``name`` (an unknown name lists the valid ones), its optimisers created."""
    cls = OSR_METHODS.get(name)
    return cls(num_classes, train, **hparams).setup()
