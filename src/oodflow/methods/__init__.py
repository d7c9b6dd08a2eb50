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
        "arpl": "oodflow.methods.open_set:ARPL",
        "dias": "oodflow.methods.open_set:DIAS",
        "edge": "oodflow.methods.edge:EDGE",
    },
)

#: Methods that train on the auxiliary outlier pool (the workflow gives them ``aux.npz``); kept here
#: so the workflow can tell without importing torch. A test checks it against the classes.
AUX_METHODS = frozenset({"oe", "energy_ft", "aoe", "edge"})

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
        "augment_outliers",
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
    "arpl": ("weight_pl", "temp"),
    "dias": (
        *("beta", "fake_ratio", "pull_ratio", "smoothing", "smoothing2", "temp"),
        *("gan_lr", "copycat_lr", "latent_dim", "gan_width", "mean", "std", "reuse_fakes"),
    ),
    "edge": ("alpha", "beta", "k", "m", "start_epoch", "aux_batch_size"),
}

#: Multi-prototype contrastive methods (PALM, ADAPT): their feature caches also hold the head
#: embeddings and the prototypes, and their runs get a figure of them.
PROTOTYPE_METHODS = frozenset({"palm", "adapt"})

#: Methods that train no classifier head (PALM, ADAPT: nearest prototype; ARPL: reciprocal points):
#: the method's ``infer(model, x)`` gives the feature cache's logits and features, and their runs
#: list their scores (``runs.<run>.scores``), none that reads the head's weights or re-runs the
#: network. A test checks it against the classes (those with ``infer``).
HEADLESS_METHODS = frozenset({"palm", "adapt", "arpl"})


def build_method(name: str, **kwargs):
    """Instantiate the training method ``name`` with its keyword arguments."""
    cls = METHODS.get(name)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise TypeError(f"method '{name}': {err}") from None
