"""Shrink a validated config to toy scale, by the ``x-smoke`` rules of ``config/schema.yaml``.

Every schema property that sets the scale of a run carries the keyword ``x-smoke`` (JSON Schema
ignores unknown keywords, so validation is unaffected) with its toy value:

* a number caps the value: ``min(current, smoke)``, and ``null`` ("all", "the run's") becomes it;
* ``{first: n}`` keeps a list's first ``n`` entries (sweep values, seeds, adversarial eps, OSR trials).

:func:`shrink` walks the config beside the schema (``$ref``/``$defs``, maps such as ``runs`` and
``sweeps`` through ``additionalProperties``, arrays through ``items``). Free-form argument maps that
the schema cannot annotate (``method_args``, ``objective_args``, score parameters, the catalog
parsers' ``parser_args``) get theirs from the tables below, each entry a keyword argument of the
method, objective, score or parser (a test checks them against the signatures). Nothing that shapes
the DAG's outputs is dropped: runs, scores, OOD sets, comparisons, OSR datasets/methods/splits and
multi-label runs stay; only the sweep values and seeds past the kept ones lose their runs (and the
comparisons and adversarial entries of those runs).
"""

from __future__ import annotations

import argparse
import copy
import inspect
import sys
from collections.abc import Mapping
from typing import Any

__all__ = [
    "METHOD_ARGS",
    "MODEL_ARGS",
    "OBJECTIVE_ARGS",
    "PARSER_ARGS",
    "SCORE_ARGS",
    "SMOKE_KEY",
    "apply_rule",
    "main",
    "shrink",
    "smoke_rules",
]

SMOKE_KEY = "x-smoke"

#: ``runs.<run>.method_args`` by method (spine training methods): CPU cost, not the DAG's shape.
#: PALM/ADAPT: prototypes per class and their projection width (k <= n_proto: prototypes kept per
#: sample's class).
METHOD_ARGS: dict[str, dict[str, Any]] = {
    "palm": {"n_proto": 2, "k": 2, "proj_dim": 32},
    "adapt": {"n_proto": 2, "k": 2, "proj_dim": 32},
    # EDGE's energy-gap term starts at start_epoch: at 0 a one-epoch run exercises it.
    "edge": {"start_epoch": 0},
}

#: ``runs.<run>.model_args`` by model: a quarter of the channels (a 16th of the convolutions' cost; the
#: same layers, blocks and heads), except for pretrained models, whose weights fix the width.
MODEL_ARGS: dict[str, dict[str, Any]] = {
    name: {"width": 0.25}
    for name in ("resnet18", "resnet34", "wrn40_2", "mobilenet_v3_large", "mobilenet_v3_small")
}

#: ``multilabel.runs.<run>.objective_args`` by objective.
OBJECTIVE_ARGS: dict[str, dict[str, Any]] = {
    "edge": {"start_epoch": 0},
}

#: Score parameters by score name (``scores``, ``osr.scores``, ``multilabel.scores``): neighbours and
#: principal dimensions below the toy training sets' size (kNN needs k <= train images; ViM's
#: principal space must leave a residual), fewer CORES layers.
SCORE_ARGS: dict[str, dict[str, Any]] = {
    "knn": {"k": 5},
    "vim": {"dim": 8},
    "cores": {"layers": 2},
}

#: ``datasets.<name>.parser_args`` of catalog datasets the config needs, capped like sizes (a value
#: the config leaves out is capped from the parser's default). Entries for more datasets go here
#: (e.g. the fakes' SVHN selection), each a keyword argument of that dataset's parser.
PARSER_ARGS: dict[str, dict[str, Any]] = {
    "places365_val": {"ood_size": 40},
    # the selected SVHN test set (1,000 per digit upstream) from the fakes' 3 per digit
    "svhn": {"selected_per_class": 3},
}


def apply_rule(rule: Any, value: Any) -> Any:
    """``value`` under one ``x-smoke`` rule (see the module docstring)."""
    if isinstance(rule, Mapping):
        if set(rule) != {"first"}:
            raise ValueError(f"unknown {SMOKE_KEY} rule {dict(rule)!r}; valid: a number or {{first: n}}")
        return None if value is None else list(value)[: rule["first"]]
    if isinstance(rule, bool) or not isinstance(rule, (int, float)):
        raise ValueError(f"unknown {SMOKE_KEY} rule {rule!r}; valid: a number or {{first: n}}")
    if value is None:
        return rule
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{SMOKE_KEY} rule {rule!r} caps numbers, got {value!r}")
    return min(value, rule)


def _resolve(root: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported, got {ref!r}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def _children(node: Mapping[str, Any]):
    """(path part, sub-schema) of a schema node: properties by name, '*' for maps, '[]' for arrays."""
    yield from node.get("properties", {}).items()
    if isinstance(node.get("additionalProperties"), Mapping):
        yield "*", node["additionalProperties"]
    if isinstance(node.get("items"), Mapping):
        yield "[]", node["items"]


def smoke_rules(schema: Mapping[str, Any] | None = None) -> list[tuple[str, Any]]:
    """Every ``x-smoke`` rule of the schema as (config path, rule), e.g. ``("runs.*.epochs", 1)``;
    ``*`` is any key of a map, ``[]`` any item of an array. The tables' rules follow, as
    ``runs.*.method_args[method=palm].n_proto`` and the like."""
    from oodflow.config import load_schema

    root = schema if schema is not None else load_schema()
    out: list[tuple[str, Any]] = []

    def visit(node: Mapping[str, Any], path: str) -> None:
        node = _resolve(root, node)
        if SMOKE_KEY in node:
            out.append((path, node[SMOKE_KEY]))
            return
        for part, sub in _children(node):
            visit(sub, f"{path}.{part}" if path else part)

    visit(root, "")
    for where, table, key in (
        ("runs.*.method_args", METHOD_ARGS, "method"),
        ("runs.*.model_args", MODEL_ARGS, "model"),
        ("multilabel.runs.*.objective_args", OBJECTIVE_ARGS, "objective"),
        ("{scores,osr.scores,multilabel.scores}", SCORE_ARGS, "score"),
        ("datasets", PARSER_ARGS, "dataset"),
    ):
        for name, args in table.items():
            for arg, rule in args.items():
                path = (
                    f"datasets.{name}.parser_args.{arg}"
                    if key == "dataset"
                    else f"{where}[{key}={name}].{arg}"
                )
                out.append((path, rule))
    return out


def _shrink_node(root: Mapping[str, Any], node: Mapping[str, Any] | None, value: Any) -> Any:
    if node is None:
        return copy.deepcopy(value)
    node = _resolve(root, node)
    if SMOKE_KEY in node:
        return apply_rule(node[SMOKE_KEY], value)
    if isinstance(value, dict):
        props, extra = node.get("properties", {}), node.get("additionalProperties")
        return {
            k: _shrink_node(root, props.get(k, extra if isinstance(extra, Mapping) else None), v)
            for k, v in value.items()
        }
    if isinstance(value, list) and isinstance(node.get("items"), Mapping):
        return [_shrink_node(root, node["items"], v) for v in value]
    return copy.deepcopy(value)


def _cap_args(args: Mapping[str, Any], table: Mapping[str, Any], defaults: Mapping[str, Any] | None = None):
    out = dict(args)
    for name, rule in table.items():
        current = out.get(name, (defaults or {}).get(name))
        out[name] = apply_rule(rule, current)
    return out


def _param_rule(root: Mapping[str, Any], template: Mapping[str, Any], param: str) -> Any:
    """The rule of a swept run parameter (``epochs``, ``outliers.count``, ``method_args.k``), or None."""
    head, _, rest = param.partition(".")
    if head == "method_args":
        return METHOD_ARGS.get(template.get("method"), {}).get(rest)
    node = _resolve(root, root["$defs"]["run"]).get("properties", {}).get(head)
    if node is not None and rest:
        node = _resolve(root, node).get("properties", {}).get(rest)
    return None if node is None else _resolve(root, node).get(SMOKE_KEY)


def _sweep_renames(root, original: Mapping[str, Any], out: dict[str, Any]) -> dict[str, str | None]:
    """Trim each sweep to its first values (a swept parameter with a rule has its values mapped
    through the rule, duplicates dropped; values whose runs a comparison or a fine-tuned run names are
    kept as well) and return old run name -> new name (None: dropped)."""
    from oodflow.seeds import seeded_name
    from oodflow.sweeps import value_label

    renames: dict[str, str | None] = {}
    values_rule = _resolve(root, root["properties"]["sweeps"]["additionalProperties"])["properties"]["values"]
    for name, sweep in original.get("sweeps", {}).items():
        rule = _param_rule(root, sweep["template"], sweep["param"])
        mapped = [v if rule is None else apply_rule(rule, v) for v in sweep["values"]]
        kept = apply_rule(values_rule[SMOKE_KEY], list(dict.fromkeys(mapped)))
        # a value whose run a comparison or another run's init_from names is kept too
        kept += [
            m for v, m in zip(sweep["values"], mapped, strict=True)
            if m not in kept and _referenced(original, f"{name}-{value_label(v)}")
        ]  # fmt: skip
        out["sweeps"][name]["values"] = kept
        for old, new in zip(sweep["values"], mapped, strict=True):
            keep = new in kept  # values that the rule merges name one run
            old_run, new_run = f"{name}-{value_label(old)}", f"{name}-{value_label(new)}"
            names = [(old_run, new_run)]
            if original.get("seeds"):
                names = [(seeded_name(old_run, s), seeded_name(new_run, s)) for s in original["seeds"]]
            for o, n in names:
                renames[o] = n if keep else None
    return renames


def _referenced(config: Mapping[str, Any], run: str) -> bool:
    """Whether a comparison or a fine-tuned run names ``run`` (or one of its seed copies)."""
    from oodflow.seeds import base_run

    names = [c[r] for c in config.get("report", {}).get("comparisons", []) for r in ("baseline", "candidate")]
    names += [spec["init_from"] for spec in config["runs"].values() if spec.get("init_from")]
    return any(base_run(n) == run or n == run for n in names)


def _seed_drops(original: Mapping[str, Any], out: Mapping[str, Any]) -> dict[str, None]:
    """Runs expanded for the seeds past the kept ones."""
    from oodflow.seeds import base_run

    if not original.get("seeds"):
        return {}
    dropped = set(original["seeds"]) - set(out["seeds"])
    return {
        run: None
        for run, spec in original["runs"].items()
        if spec.get("seed") in dropped and base_run(run, spec) != run
    }


def _rename_runs(out: dict[str, Any], renames: Mapping[str, str | None]) -> None:
    """Apply old -> new run names (None: dropped) to runs, init_from, comparisons and adversarial.runs."""
    if not renames:
        return
    new_name = lambda run: renames.get(run, run)  # noqa: E731
    runs = {}
    for run, spec in out["runs"].items():
        if new_name(run) is None:
            continue
        if spec.get("init_from") is not None:
            spec["init_from"] = new_name(spec["init_from"])
            if spec["init_from"] is None:
                raise ValueError(f"run '{run}' fine-tunes a run that shrinking drops")
        runs.setdefault(new_name(run), spec)
    out["runs"] = runs
    comparisons = []
    for comp in out.get("report", {}).get("comparisons", []):
        base, cand = new_name(comp["baseline"]), new_name(comp["candidate"])
        if base is not None and cand is not None:
            comparisons.append({**comp, "baseline": base, "candidate": cand})
    if "report" in out:
        out["report"]["comparisons"] = comparisons
    adv = out.get("adversarial")
    if adv is not None and adv.get("runs") is not None:
        adv["runs"] = list(dict.fromkeys(new_name(r) for r in adv["runs"] if new_name(r) is not None))


def _shrink_args(out: dict[str, Any]) -> None:
    """The tables' rules: method, objective and score arguments; parser arguments of needed datasets."""
    from oodflow.data.catalog import DATASETS, parser
    from oodflow.steps import catalog_datasets

    runs = [*out.get("runs", {}).values(), *(s["template"] for s in out.get("sweeps", {}).values())]
    for spec in runs:
        if spec["method"] in METHOD_ARGS:
            spec["method_args"] = _cap_args(spec.get("method_args", {}), METHOD_ARGS[spec["method"]])
        model_args = spec.get("model_args", {})
        if spec["model"] in MODEL_ARGS and not model_args.get("pretrained"):
            spec["model_args"] = _cap_args(model_args, MODEL_ARGS[spec["model"]], {"width": 1.0})
    ml = out.get("multilabel")
    for spec in (ml or {}).get("runs", {}).values():
        if spec["objective"] in OBJECTIVE_ARGS:
            spec["objective_args"] = _cap_args(
                spec.get("objective_args", {}), OBJECTIVE_ARGS[spec["objective"]]
            )
    for section in (out, out.get("osr"), ml):
        for name, params in ((section or {}).get("scores") or {}).items():
            if name in SCORE_ARGS:
                section["scores"][name] = _cap_args(params, SCORE_ARGS[name], _score_defaults(name))
    for name in catalog_datasets(out):
        if name in PARSER_ARGS:
            entry = out.setdefault("datasets", {}).setdefault(name, {})
            defaults = {
                k: p.default
                for k, p in inspect.signature(parser(DATASETS.get(name))).parameters.items()
                if p.default is not inspect.Parameter.empty
            }
            entry["parser_args"] = _cap_args(entry.get("parser_args", {}), PARSER_ARGS[name], defaults)


def _score_defaults(name: str) -> dict[str, Any]:
    from oodflow.scores import SCORES

    params = inspect.signature(SCORES.get(name)).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def shrink(config: Mapping[str, Any]) -> dict[str, Any]:
    """The toy-scale copy of a *validated* config: every property annotated ``x-smoke`` in the schema
    gets its smoke value (values already smaller are kept; null becomes the smoke value), the
    argument tables' values likewise; sweeps keep their first values and seeds their first two
    (the runs, comparisons and adversarial entries of the others go). Sets ``smoke: true``. The
    result is validated (and so carries the schema's defaults); shrinking it again changes nothing."""
    from oodflow.config import load_schema, validate

    schema = load_schema()
    original = validate(config, schema)
    out = _shrink_node(schema, schema, original)
    # a dropped seed wins over a sweep's renaming
    renames: dict[str, str | None] = {**_sweep_renames(schema, original, out), **_seed_drops(original, out)}
    _rename_runs(out, renames)
    _shrink_args(out)
    out["smoke"] = True
    return validate(out, schema)


def main(argv: list[str] | None = None) -> int:
    """``python -m oodflow.smoke.shrink CONFIG``: print the toy-scale config as YAML (``--rules``:
    the schema's x-smoke rules and the argument tables instead)."""
    import yaml

    from oodflow.config import ConfigError, load

    ap = argparse.ArgumentParser(prog="python -m oodflow.smoke.shrink", description=main.__doc__)
    ap.add_argument("config", nargs="?", help="a config file (e.g. config/papers/food101.yaml)")
    ap.add_argument("--rules", action="store_true", help="list the smoke rules (path -> toy value)")
    args = ap.parse_args(argv)
    if args.rules:
        for path, rule in smoke_rules():
            print(f"{path}: {rule}")
        return 0
    if args.config is None:
        ap.error("give a config file (or --rules)")
    try:
        out = shrink(load(args.config))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    sys.stdout.write(yaml.safe_dump(out, sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
