"""Sweeps: a run template expanded over the values of one parameter into ordinary runs.

A config's ``sweeps`` section

.. code-block:: yaml

    sweeps:
      aoe_eps:
        template: {model: wrn40_2, method: aoe, init_from: baseline, method_args: {attack: eba}}
        param: method_args.eps
        values: [0.0, 0.5, 1.0]

becomes the runs ``aoe_eps-0p0``, ``aoe_eps-0p5`` and ``aoe_eps-1p0`` at validation time (before any
job runs), each the template with ``method_args.eps`` set to its value. Every downstream rule sees them
as runs (one Snakemake job each, so a cluster trains them in parallel). Names are deterministic:
``<sweep>-<value>`` with the value written as :func:`value_label` writes it. No torch is imported.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["SWEEPABLE_NESTED", "expand_sweeps", "set_param", "sweep_runs", "value_label"]

#: Run keys whose entries a sweep may set one by one (``method_args.eps``, ``outliers.sigma``); any
#: other run key is set as a whole (``lr``).
SWEEPABLE_NESTED = ("method_args", "model_args", "outliers")


class SweepError(ValueError):
    """A sweep cannot be expanded; the message names the key (``config error at sweeps.<name>...``)."""


def value_label(value: Any) -> str:
    """The run-name part of a swept value: ``0.1 -> 0p1``, ``-2 -> m2``, ``1e-05 -> 1em05``,
    ``True -> true``, ``"eba" -> eba``; every other character outside ``[A-Za-z0-9_]`` becomes ``_``.

    Floats are written by ``repr`` (the shortest text that reads back the same float), so distinct
    values get distinct labels unless they differ only in characters mapped to ``_``.
    """
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = str(value)
    text = text.replace(".", "p").replace("-", "m").replace("+", "")
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def sweep_runs(name: str, sweep: Mapping[str, Any]) -> dict[str, Any]:
    """Run name -> swept value, in the order of ``sweep["values"]``."""
    return {f"{name}-{value_label(v)}": v for v in sweep["values"]}


def set_param(spec: Mapping[str, Any], param: str, value: Any) -> dict[str, Any]:
    """A deep copy of run ``spec`` with the dotted ``param`` (``lr``, ``method_args.eps``) set."""
    out = copy.deepcopy(dict(spec))
    head, _, rest = param.partition(".")
    if rest:
        out[head] = {**out.get(head, {}), rest: value}
    else:
        out[head] = value
    return out


def _check_param(where: str, param: str, template: Mapping[str, Any], run_keys: tuple[str, ...]) -> None:
    """The swept ``param`` is a run key, or ``method_args.<arg>`` of the template's method, or
    ``model_args.<arg>`` (model arguments are checked against the model when the run trains)."""
    from oodflow.methods import METHOD_ARGS

    head, _, rest = param.partition(".")
    if head not in run_keys or (rest and head not in SWEEPABLE_NESTED) or "." in rest:
        nested = ", ".join(f"{k}.<name>" for k in SWEEPABLE_NESTED)
        raise SweepError(
            f"config error at {where}.param: unknown parameter path '{param}'; valid: a run key "
            f"({', '.join(k for k in run_keys if k != 'hpo')}) or {nested}"
        )
    if head == "hpo":
        raise SweepError(f"config error at {where}.param: the hpo block cannot be swept")
    if head == "method_args" and rest:
        valid = METHOD_ARGS.get(template.get("method"))
        if valid is not None and rest not in valid:
            raise SweepError(
                f"config error at {where}.param: method '{template['method']}' has no argument "
                f"'{rest}' (valid: {', '.join(valid) or 'none'})"
            )


def expand_sweeps(cfg: dict[str, Any], run_schema: Mapping[str, Any], fill_defaults) -> None:
    """Add every sweep's runs to ``cfg["runs"]`` (in place, after the runs written out).

    ``run_schema`` is the schema of one run (its ``properties`` are the sweepable keys);
    ``fill_defaults(spec)`` returns ``spec`` with the schema's defaults, used to recognise a run that
    an earlier validation of the same config already expanded (validating twice is harmless).
    Errors: an unknown parameter path, a duplicate value, or a run name already taken.
    """
    run_keys = tuple(run_schema["properties"])
    runs = cfg.setdefault("runs", {})
    for name, sweep in cfg.get("sweeps", {}).items():
        where = f"sweeps.{name}"
        _check_param(where, sweep["param"], sweep["template"], run_keys)
        seen: dict[str, Any] = {}
        for i, value in enumerate(sweep["values"]):
            run = f"{name}-{value_label(value)}"
            if run in seen:
                raise SweepError(
                    f"config error at {where}.values.{i}: {value!r} names the run '{run}' as "
                    f"{seen[run]!r} does (a duplicate value)"
                )
            seen[run] = value
            spec = set_param(sweep["template"], sweep["param"], value)
            if run in runs and fill_defaults(runs[run]) != fill_defaults(spec):
                raise SweepError(
                    f"config error at {where}: run name '{run}' is already taken by another run; "
                    "rename the sweep or that run"
                )
            runs[run] = spec
