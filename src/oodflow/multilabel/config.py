"""Validation of the ``multilabel:`` config section (after the schema has filled in defaults).

Checks every name against the registries and fills the remaining defaults that depend on the
benchmark (``ood_sets``, ``oe_set``) or on other keys (``tail.scores``, ``oe_selection.run``).
Imports no torch: objective arguments are checked against :data:`OBJECTIVE_ARGS` (a test checks the
table against the classes' signatures).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Each objective's keyword arguments (checked against the classes by a test).
OBJECTIVE_ARGS = {
    "bce": (),
    "oe_ml": ("lam",),
    "energy_ml": ("lam", "m_in", "m_out"),
    "edge": ("alpha", "beta", "k", "m", "start_epoch"),
}


def check(ml: dict[str, Any]) -> None:
    """Validate (and complete) the multi-label section in place; raises ``ConfigError``."""
    from oodflow.config import ConfigError, _check_kwargs
    from oodflow.models import MODELS
    from oodflow.multilabel import ML_BENCHMARKS, ML_SCORES

    def fail(where: str, msg: str) -> None:
        raise ConfigError(f"config error at multilabel.{where}: {msg}")

    b = ml["benchmark"]
    if b["name"] not in ML_BENCHMARKS:
        fail(
            "benchmark.name",
            f"unknown multi-label benchmark '{b['name']}'; valid names: {', '.join(ML_BENCHMARKS.names())}",
        )
    bench = ML_BENCHMARKS.get(b["name"])
    if b["ood_sets"] is None:
        b["ood_sets"] = list(bench.ood_sets)
    for i, name in enumerate(b["ood_sets"]):
        if name not in bench.ood_sets:
            fail(
                f"benchmark.ood_sets.{i}",
                f"unknown OOD set '{name}' of '{bench.name}'; valid names: {', '.join(bench.ood_sets)}",
            )
    if b["oe_set"] is None:
        b["oe_set"] = bench.oe_default
    if b["oe_set"] not in bench.oe_sets:
        fail(
            "benchmark.oe_set",
            f"unknown OE pool '{b['oe_set']}' of '{bench.name}'; valid names: {', '.join(bench.oe_sets)}",
        )
    if b["min_tiles"] > b["max_tiles"]:
        fail("benchmark.min_tiles", f"{b['min_tiles']} exceeds max_tiles {b['max_tiles']}")
    for run, spec in ml["runs"].items():
        if spec["model"] not in MODELS:
            fail(
                f"runs.{run}.model",
                f"unknown model '{spec['model']}'; valid names: {', '.join(MODELS.names())}",
            )
        valid = OBJECTIVE_ARGS[spec["objective"]]
        for arg in spec["objective_args"]:
            if arg not in valid:
                fail(
                    f"runs.{run}.objective_args.{arg}",
                    f"objective '{spec['objective']}' has no parameter '{arg}' "
                    f"(valid: {', '.join(valid) or 'none'})",
                )
    for name, params in ml["scores"].items():
        if name not in ML_SCORES:
            fail(
                f"scores.{name}",
                f"unknown multi-label score '{name}'; valid names: {', '.join(ML_SCORES.names())}",
            )
        _check_kwargs(ML_SCORES.get(name), params, f"multilabel.scores.{name}", f"score '{name}'")
    tail = ml["tail"]
    if tail["scores"] is None:
        tail["scores"] = ["joint_energy"] if "joint_energy" in ml["scores"] else [next(iter(ml["scores"]))]
    for i, name in enumerate(tail["scores"]):
        if name not in ml["scores"]:
            fail(
                f"tail.scores.{i}", f"score '{name}' is not in multilabel.scores ({', '.join(ml['scores'])})"
            )
    sel = ml.get("oe_selection")
    if sel is not None:
        valid_sets = [*bench.oe_sets, *bench.ood_sets]
        for i, name in enumerate(sel["candidates"]):
            if name not in valid_sets:
                fail(f"oe_selection.candidates.{i}", f"unknown set '{name}'; valid: {', '.join(valid_sets)}")
        if sel["run"] is None:
            sel["run"] = next(iter(ml["runs"]))
        if sel["run"] not in ml["runs"]:
            fail("oe_selection.run", f"unknown run '{sel['run']}'; runs: {', '.join(ml['runs'])}")


def check_section(cfg: Mapping[str, Any]) -> None:
    """Check ``cfg["multilabel"]`` when present (called by :func:`oodflow.config.validate`)."""
    if cfg.get("multilabel") is not None:
        check(cfg["multilabel"])
