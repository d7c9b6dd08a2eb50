"""Training methods (objectives) by name; listing them imports no torch."""

from oodflow.registry import Registry

METHODS = Registry(
    "method",
    {
        "ce": "oodflow.methods.ce:CrossEntropy",
        "oe": "oodflow.methods.outlier_exposure:OutlierExposure",
        "energy_ft": "oodflow.methods.outlier_exposure:EnergyFineTune",
        "aoe": "oodflow.methods.adversarial_oe:AdversarialOutlierExposure",
        "palm": "oodflow.methods.prototypes:PALM",
        "adapt": "oodflow.methods.prototypes:ADAPT",
    },
)

#: Methods that train on the auxiliary outlier pool (the workflow gives them ``aux.npz``); kept here
#: so the workflow can tell without importing torch. A test checks it against the classes.
AUX_METHODS = frozenset({"oe", "energy_ft", "aoe"})

#: Each method's keyword arguments, so the config can check hyper-parameter search names (``hpo``)
#: without importing torch. A test checks them against the classes' signatures.
METHOD_ARGS = {
    "ce": ("label_smoothing",),
    "oe": ("lam", "aux_batch_size", "oe_loss"),
    "aoe": (
        "attack",
        "eps",
        "alpha",
        "steps",
        "decay",
        "lam",
        "aux_batch_size",
        "oe_loss",
        "mean",
        "std",
        "clip",
        "raw_outliers",
        "grad_wrt_inliers",
        "clip_start_only",
        "shared_noise",
        "seed",
    ),
    "energy_ft": ("lam", "m_in", "m_out", "aux_batch_size"),
    **{
        name: (
            *("n_proto", "proto_m", "k", "temp", "epsilon", "sinkhorn_iter", "lambda_pcon"),
            *("proj_dim", "proj_hidden", "n_views", "augmentation", "mean", "std"),
            *extra,
        )
        for name, extra in (("palm", ("proto_temp",)), ("adapt", ("beta", "tau0", "align_ref")))
    },
}

#: Multi-prototype contrastive methods (PALM, ADAPT): no classifier head is trained, so their runs
#: are scored by feature-distance scores only (``runs.<run>.scores``); the cache's logits are the
#: nearest-prototype classifier's.
PROTOTYPE_METHODS = frozenset({"palm", "adapt"})


def build_method(name: str, **kwargs):
    """Instantiate the training method ``name`` with its keyword arguments."""
    cls = METHODS.get(name)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise TypeError(f"method '{name}': {err}") from None
