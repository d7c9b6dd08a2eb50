"""Training methods (objectives) by name; listing them imports no torch."""

from oodflow.registry import Registry

METHODS = Registry("method", {"ce": "oodflow.methods.ce:CrossEntropy"})


def build_method(name: str, **kwargs):
    """Instantiate the training method ``name`` with its keyword arguments."""
    cls = METHODS.get(name)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise TypeError(f"method '{name}': {err}") from None
