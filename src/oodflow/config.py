"""Configuration: validated against ``config/schema.yaml`` and the registries before any job runs.

:func:`validate` fills in schema defaults, then checks every name (benchmark, OOD sets, models,
methods, scores and their parameters) against the library's registries, without importing torch.
Every problem is a :class:`ConfigError` that names the offending key, e.g.
``config error at runs.baseline.epochs: -1 is less than the minimum of 1``.
"""

from __future__ import annotations

import copy
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from oodflow import yamlfile

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


def _with_defaults(validator_class: type) -> type:
    """Extend a jsonschema validator so that it fills in ``default`` values while validating."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub and prop not in instance:
                    instance[prop] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    return yamlfile.safe_load(Path(path).read_text())


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<root>"


#: Parameters the workflow supplies itself (never from the config): of models/methods/scores and of
#: the catalog's dataset parsers.
SUPPLIED = ("self", "num_classes", "in_channels")
PARSER_SUPPLIED = ("raw_dir", "out_dir")

#: Top-level sections that give the workflow work of their own, besides the runs (single-label OOD).
SECTIONS = ("osr", "multilabel")


def _check_kwargs(
    fn: Any, kwargs: Mapping[str, Any], where: str, what: str, supplied: tuple[str, ...] = SUPPLIED
) -> None:
    """Raise ConfigError if ``kwargs`` has names that ``fn`` does not accept or lacks required ones."""
    params = inspect.signature(fn).parameters
    for name, p in params.items():
        if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD:
            if name not in supplied and name not in kwargs:
                raise ConfigError(f"config error at {where}: {what} needs the parameter '{name}'")
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    for name in kwargs:
        if name not in params:
            valid = ", ".join(p for p in params if p not in supplied)
            raise ConfigError(
                f"config error at {where}.{name}: {what} has no parameter '{name}' (valid: {valid or 'none'})"
            )


def validate(config: Mapping[str, Any], schema: dict | None = None) -> dict:
    """Return a validated deep copy of ``config`` with defaults filled in."""
    from oodflow.seeds import SeedError, expand_seeds
    from oodflow.sweeps import SweepError, expand_sweeps

    cfg = copy.deepcopy(dict(config))
    schema = schema or load_schema()
    validator = _Validator(schema)
    _schema_check(validator, cfg)
    run_validator = _Validator({**schema["$defs"]["run"], "$defs": schema["$defs"]})

    def with_defaults(spec: Mapping[str, Any]) -> dict:
        spec = copy.deepcopy(dict(spec))
        for _ in run_validator.iter_errors(spec):  # fills the defaults; the schema check reports errors
            pass
        return spec

    try:
        expand_sweeps(cfg, schema["$defs"]["run"], with_defaults)
    except SweepError as err:
        raise ConfigError(str(err)) from None
    _schema_check(validator, cfg)  # the swept runs get their defaults and checks
    try:
        expand_seeds(cfg)
    except SeedError as err:
        raise ConfigError(str(err)) from None
    if not cfg["runs"] and not any(cfg.get(section) for section in SECTIONS):
        raise ConfigError(
            f"config error at runs: nothing to do (give runs, sweeps or a section of {', '.join(SECTIONS)})"
        )
    if cfg["runs"] and not cfg["scores"]:
        raise ConfigError("config error at scores: the runs need at least one score")
    # Registry checks: cheap, lazy registries (nothing heavy is imported to list names).
    from oodflow.data import BENCHMARKS
    from oodflow.methods import METHODS
    from oodflow.models import MODELS
    from oodflow.scores import SCORES

    checks = [("benchmark.name", BENCHMARKS, [cfg["benchmark"]["name"]])]
    for run, spec in cfg["runs"].items():
        checks.append((f"runs.{run}.model", MODELS, [spec["model"]]))
        checks.append((f"runs.{run}.method", METHODS, [spec["method"]]))
    checks += [(f"scores.{name}", SCORES, [name]) for name in cfg["scores"]]
    for where, registry, names in checks:
        for name in registry.unknown(names):
            raise ConfigError(
                f"config error at {where}: unknown {registry.kind} '{name}'; "
                f"valid names: {', '.join(registry.names())}"
            )
    for run, spec in cfg["runs"].items():
        _check_static_args(MODELS, spec["model"], spec["model_args"], f"runs.{run}.model_args")
        _check_static_args(METHODS, spec["method"], spec["method_args"], f"runs.{run}.method_args")
    _check_init_from(cfg["runs"])
    for run, spec in cfg["runs"].items():
        if spec.get("hpo") is not None:
            _check_hpo(run, spec, cfg["benchmark"]["aux_size"])
    bench = BENCHMARKS.get(cfg["benchmark"]["name"])
    for i, name in enumerate(cfg["benchmark"]["ood_sets"]):
        if name not in bench.ood_sets:
            raise ConfigError(
                f"config error at benchmark.ood_sets.{i}: unknown OOD set '{name}' of benchmark "
                f"'{bench.name}'; valid names: {', '.join(sorted(bench.ood_sets))}"
            )
    if cfg["benchmark"]["image_format"] not in bench.image_formats:
        raise ConfigError(
            f"config error at benchmark.image_format: benchmark '{bench.name}' is served as "
            f"{', '.join(bench.image_formats)}, not '{cfg['benchmark']['image_format']}'"
        )
    if bench.source is None:
        for key in ("train_per_class", "test_per_class", "ood_size", "aux_size"):
            if cfg["benchmark"][key] is None:
                raise ConfigError(f"config error at benchmark.{key}: the embedded benchmark needs a number")
    _check_split_sizes(cfg["benchmark"], bench)
    for name, params in cfg["scores"].items():  # score modules import no torch: cheap to check here
        _check_kwargs(SCORES.get(name), params, f"scores.{name}", f"score '{name}'")
    check_dataset_options(cfg["datasets"])
    _check_run_scores(cfg)
    _check_comparisons(cfg, bench.ood_sets)
    for run, spec in cfg["runs"].items():
        if spec.get("outliers") is not None:
            _check_outliers(run, spec, cfg["benchmark"]["gan"], bench)
    _check_adversarial(cfg)
    _check_osr(cfg)
    from oodflow.multilabel.config import check_section

    check_section(cfg)  # the multi-label sub-workflow (section `multilabel`, absent: off)
    _check_pretrained(cfg)
    return cfg


def _check_static_args(registry: Any, name: str, kwargs: Mapping[str, Any], where: str) -> None:
    """A run's ``model_args`` / ``method_args``: names and simple types against the signature of the
    registered model or method, read from its source without importing it (:mod:`oodflow.signatures`;
    the train job checks the imported signature again, :func:`check_parameters`)."""
    from oodflow.signatures import EMPTY, parameters, type_problem

    what = f"{registry.kind} '{name}'"
    params = parameters(registry._entries[name])
    if params is None:
        return
    kinds = inspect.Parameter
    if any(p.kind is kinds.VAR_KEYWORD for p in params):
        return
    named = {p.name: p for p in params if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)}
    for p in named.values():
        if p.default is EMPTY and p.kind is kinds.POSITIONAL_OR_KEYWORD and p.name not in SUPPLIED:
            if p.name not in kwargs:
                raise ConfigError(f"config error at {where}: {what} needs the parameter '{p.name}'")
    for key, value in kwargs.items():
        if key not in named or key in SUPPLIED:
            valid = ", ".join(n for n in named if n not in SUPPLIED)
            raise ConfigError(
                f"config error at {where}.{key}: {what} has no parameter '{key}' (valid: {valid or 'none'})"
            )
        problem = type_problem(value, named[key].annotation)
        if problem is not None:
            raise ConfigError(f"config error at {where}.{key}: {problem} ({what}: {named[key].annotation})")


def _check_split_sizes(b: Mapping[str, Any], bench: Any) -> None:
    """Per-class counts of a catalog benchmark within its source's splits, where they are known
    (:attr:`oodflow.data.benchmarks.Benchmark.per_class`)."""
    per_class = getattr(bench, "per_class", None)
    if bench.source is None or not per_class:
        return
    train, val, test = b["train_per_class"], b["val_per_class"], b["test_per_class"]
    have = per_class["train"]
    if (train or 1) + val > have:
        key, asked = (
            ("train_per_class", f"{train} + val_per_class {val}") if train else ("val_per_class", val)
        )
        raise ConfigError(
            f"config error at benchmark.{key}: {asked} images per class, but the train split of "
            f"'{bench.source}' holds {have} per class (the validation hold-out comes out of it)"
        )
    if test is not None and test > per_class["test"]:
        raise ConfigError(
            f"config error at benchmark.test_per_class: {test} images per class, but the test split of "
            f"'{bench.source}' holds {per_class['test']} per class"
        )


def _check_pretrained(cfg: dict) -> None:
    """``model_args.pretrained`` needs a weights catalog entry for the model; the weights file itself
    is supplied by the workflow (rule download_weights), never named in ``model_args``."""
    from oodflow.models.weights import weights_for

    runs = [("runs", cfg["runs"]), ("multilabel.runs", (cfg.get("multilabel") or {}).get("runs", {}))]
    for where, specs in runs:
        for run, spec in specs.items():
            args = spec.get("model_args", {})
            if "weights" in args:
                raise ConfigError(
                    f"config error at {where}.{run}.model_args.weights: not a model argument; set "
                    "pretrained: true and the workflow reads the weights catalog's file"
                )
            try:
                weights_for(spec["model"], args)
            except KeyError as err:
                raise ConfigError(
                    f"config error at {where}.{run}.model_args.pretrained: {err.args[0]}"
                ) from None


def _schema_check(validator, cfg: dict) -> None:
    """Validate ``cfg`` against the schema (filling in defaults); the first error names its key."""
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = list(err.schema.get("properties", {}))
            extra = next((k for k in err.instance if k not in allowed), None)
            if extra is not None:
                where = _key([*err.absolute_path, extra])
                raise ConfigError(
                    f"config error at {where}: unknown key '{extra}'; valid keys: {', '.join(allowed)}"
                )
        raise ConfigError(f"config error at {_key(err.absolute_path)}: {err.message}")


def _check_osr(cfg: dict) -> None:
    """``osr``: registered method names (their hyper-parameters completed with the paper defaults),
    post-hoc scores that work on an OSR feature cache, GAN methods at 32 px, a readable reference."""
    osr = cfg.get("osr")
    if osr is None:
        return
    from oodflow.osr import METHOD_DEFAULTS, OSR_METHODS, OSR_SCORES
    from oodflow.scores import SCORES

    for name in list(osr["methods"]):
        if name not in OSR_METHODS:
            raise ConfigError(
                f"config error at osr.methods: unknown {OSR_METHODS.kind} '{name}'; "
                f"valid names: {', '.join(OSR_METHODS.names())}"
            )
        defaults, given = METHOD_DEFAULTS[name], osr["methods"][name]
        for key in given:
            if key not in defaults:
                raise ConfigError(
                    f"config error at osr.methods.{name}.{key}: method '{name}' has no parameter '{key}' "
                    f"(valid: {', '.join(defaults)})"
                )
        osr["methods"][name] = {**defaults, **given}
        if name in ("arpl_cs", "dias") and osr["train"]["img_size"] != 32:
            raise ConfigError(
                f"config error at osr.train.img_size: method '{name}' trains a 32x32 generator; "
                "use img_size 32"
            )
    for name in osr.get("recipes") or {}:
        if name not in osr["methods"]:
            raise ConfigError(
                f"config error at osr.recipes.{name}: not a method of osr.methods "
                f"({', '.join(osr['methods'])})"
            )
    for name, params in osr["scores"].items():
        if name not in OSR_SCORES:
            raise ConfigError(
                f"config error at osr.scores.{name}: not a score of an OSR feature cache; "
                f"valid names: {', '.join(OSR_SCORES)}"
            )
        _check_kwargs(SCORES.get(name), params, f"osr.scores.{name}", f"score '{name}'")
    if osr["reference"] is not None:
        from oodflow.io import FormatError
        from oodflow.osr.report import load_reference
        from oodflow.report.references import resolve

        try:
            load_reference(resolve(osr["reference"]))
        except FormatError as err:
            raise ConfigError(f"config error at osr.reference: {err}") from None


def _check_adversarial(cfg: Mapping[str, Any]) -> None:
    """``adversarial.runs`` names runs of the config (sweeps included)."""
    adv = cfg.get("adversarial")
    if adv is None or adv["runs"] is None:
        return
    for i, run in enumerate(adv["runs"]):
        if run not in cfg["runs"]:
            raise ConfigError(
                f"config error at adversarial.runs.{i}: unknown run '{run}'; runs: {', '.join(cfg['runs'])}"
            )


#: Scores that need a trained classifier head or the network (not available for headless methods).
HEAD_SCORES = frozenset({"react", "vim", "odin", "cores"})


def _check_run_scores(cfg: Mapping[str, Any]) -> None:
    """``runs.<run>.scores`` names scores of the config; runs of a method without a trained
    classifier head (``HEADLESS_METHODS``: PALM, ADAPT, ARPL) list theirs and none of
    :data:`HEAD_SCORES`."""
    from oodflow.methods import HEADLESS_METHODS

    for run, spec in cfg["runs"].items():
        where = f"runs.{run}.scores"
        names = spec.get("scores")
        for i, name in enumerate(names or []):
            if name not in cfg["scores"]:
                raise ConfigError(
                    f"config error at {where}.{i}: score '{name}' is not in the config's scores "
                    f"({', '.join(cfg['scores'])})"
                )
        if spec["method"] in HEADLESS_METHODS:
            if names is None:
                raise ConfigError(
                    f"config error at {where}: method '{spec['method']}' trains no classifier head; "
                    "list the scores to evaluate it with (e.g. [energy, mahalanobis, knn])"
                )
            bad = sorted(set(names) & HEAD_SCORES)
            if bad:
                raise ConfigError(
                    f"config error at {where}: {', '.join(bad)} need a trained classifier head, which "
                    f"method '{spec['method']}' does not train"
                )


def _check_comparisons(cfg: Mapping[str, Any], ood_sets: tuple[str, ...]) -> None:
    """``report.comparisons``: unique names, two distinct runs, configured scores, a valid reference."""
    from oodflow.io import FormatError
    from oodflow.report.references import load_reference

    seen: set[str] = set()
    for i, comp in enumerate(cfg["report"]["comparisons"]):
        where = f"report.comparisons.{i}"
        if comp["name"] in seen:
            raise ConfigError(f"config error at {where}.name: '{comp['name']}' is used twice")
        seen.add(comp["name"])
        for role in ("baseline", "candidate"):
            if comp[role] not in cfg["runs"]:
                runs = ", ".join(cfg["runs"])
                raise ConfigError(f"config error at {where}.{role}: unknown run '{comp[role]}'; runs: {runs}")
        if comp["baseline"] == comp["candidate"]:
            raise ConfigError(f"config error at {where}.candidate: the same run as the baseline")
        for j, score in enumerate(comp["scores"]):
            runs_without = [cfg["runs"][comp[r]].get("scores") for r in ("baseline", "candidate")]
            if any(names is not None and score not in names for names in runs_without):
                raise ConfigError(
                    f"config error at {where}.scores.{j}: score '{score}' is not evaluated for both runs "
                    "(runs.<run>.scores)"
                )
            if score not in cfg["scores"]:
                raise ConfigError(
                    f"config error at {where}.scores.{j}: score '{score}' is not in the config's scores "
                    f"({', '.join(cfg['scores'])})"
                )
        if comp["reference"] is not None:
            try:
                load_reference(comp["reference"], ood_sets)
            except FormatError as err:
                raise ConfigError(f"config error at {where}.reference: {err}") from None


def check_dataset_options(datasets: Mapping[str, Any]) -> None:
    """Catalog dataset names, and their ``parser_args`` against the parser's signature.

    Imports the catalog's source modules (numpy only), so it is cheap enough for validation.
    """
    from oodflow.data.catalog import DATASETS, parser

    for name, options in datasets.items():
        if name not in DATASETS:
            raise ConfigError(
                f"config error at datasets.{name}: unknown dataset '{name}'; "
                f"valid names: {', '.join(DATASETS.names())}"
            )
        spec = DATASETS.get(name)
        _check_kwargs(
            parser(spec),
            options.get("parser_args", {}),
            f"datasets.{name}.parser_args",
            f"the parser of '{name}' ({spec.parser})",
            supplied=PARSER_SUPPLIED,
        )


def _check_outliers(run: str, spec: Mapping[str, Any], gan: Mapping[str, Any], bench: Any) -> None:
    """``runs.<run>.outliers``: an outlier method; GAN outliers need no hpo and, when published, a
    published sigma and a benchmark stored as 32x32 RGB; ``count`` is for GAN outliers only."""
    from oodflow.data.catalog import gan_dataset
    from oodflow.methods import AUX_METHODS

    where, out = f"runs.{run}.outliers", spec["outliers"]
    if spec["method"] not in AUX_METHODS:
        raise ConfigError(
            f"config error at {where}: method '{spec['method']}' trains on no outliers "
            f"(outlier methods: {', '.join(sorted(AUX_METHODS))})"
        )
    if out["source"] == "aux":
        if out["count"] is not None:
            raise ConfigError(f"config error at {where}.count: a count applies to GAN outliers (source: gan)")
        return
    if spec.get("hpo") is not None:
        raise ConfigError(
            f"config error at {where}: a run with an hpo block validates on the aux pool; use source aux"
        )
    if gan["source"] == "published":
        try:
            gan_dataset(out["sigma"])
        except ValueError as err:
            raise ConfigError(f"config error at {where}.sigma: {err}") from None
        if bench.source is None or bench.image_size != 32 or len(bench.mean) != 3:
            raise ConfigError(
                f"config error at {where}: the published GAN samples are 32x32 RGB, but benchmark "
                f"'{bench.name}' is stored otherwise; set benchmark.gan.source: trained"
            )
    elif out["count"] is not None and out["count"] > gan["samples"]:
        raise ConfigError(
            f"config error at {where}.count: {out['count']} outliers of {gan['samples']} GAN samples "
            "(benchmark.gan.samples)"
        )


def _check_init_from(runs: Mapping[str, Any]) -> None:
    """``init_from`` names another run with the same model, and the chain has no cycle."""
    for run, spec in runs.items():
        seen, current = [run], spec
        while current["init_from"] is not None:
            parent = current["init_from"]
            if parent not in runs:
                raise ConfigError(
                    f"config error at runs.{run}.init_from: unknown run '{parent}'; runs: {', '.join(runs)}"
                )
            if parent in seen:
                cycle = " -> ".join([*seen, parent])
                raise ConfigError(f"config error at runs.{run}.init_from: cycle {cycle}")
            if (runs[parent]["model"], runs[parent]["model_args"]) != (spec["model"], spec["model_args"]):
                raise ConfigError(
                    f"config error at runs.{run}.init_from: run '{parent}' trains another model "
                    f"({runs[parent]['model']} {runs[parent]['model_args']})"
                )
            seen.append(parent)
            current = runs[parent]


def _check_hpo(run: str, spec: Mapping[str, Any], aux_size: int | None) -> None:
    """A run's ``hpo`` block: tunable names, ranges, the objective's score and the holdout size."""
    from oodflow.hpo import RUN_PARAMS
    from oodflow.methods import METHOD_ARGS
    from oodflow.scores import NETWORK_SCORES, SCORES

    where, hpo = f"runs.{run}.hpo", spec["hpo"]
    method_args = METHOD_ARGS.get(spec["method"], ())
    for name, p in hpo["params"].items():
        at = f"{where}.params.{name}"
        if name not in RUN_PARAMS and name not in method_args:
            valid = ", ".join([*RUN_PARAMS, *method_args])
            raise ConfigError(
                f"config error at {at}: unknown parameter '{name}'; tunable for method "
                f"'{spec['method']}': {valid}"
            )
        if not p["low"] < p["high"]:
            raise ConfigError(f"config error at {at}: low ({p['low']}) must be below high ({p['high']})")
        if p["log"] and p["low"] <= 0:
            raise ConfigError(f"config error at {at}: a log-scale range needs low > 0, got {p['low']}")
        if p["int"] and not all(float(p[k]).is_integer() for k in ("low", "high")):
            raise ConfigError(f"config error at {at}: an integer range needs integer low and high")
        if name == "lr" and p["low"] <= 0:
            raise ConfigError(f"config error at {at}: the learning rate needs low > 0, got {p['low']}")
        if name == "weight_decay" and p["low"] < 0:
            raise ConfigError(f"config error at {at}: weight decay needs low >= 0, got {p['low']}")
    margins = hpo["params"].get("m_in"), hpo["params"].get("m_out")
    if spec["method"] == "energy_ft" and None not in margins and margins[0]["low"] >= margins[1]["high"]:
        raise ConfigError(
            f"config error at {where}.params: every m_in in [{margins[0]['low']}, {margins[0]['high']}] "
            f"is at least every m_out in [{margins[1]['low']}, {margins[1]['high']}]; energy fine-tuning "
            "needs m_in < m_out"
        )
    score = hpo["score"]
    if score in SCORES.unknown([score]) or score in NETWORK_SCORES:
        valid = [n for n in SCORES.names() if n not in NETWORK_SCORES]
        raise ConfigError(
            f"config error at {where}.score: '{score}' is not a post-hoc score; "
            f"valid names: {', '.join(valid)}"
        )
    _check_kwargs(SCORES.get(score), hpo["score_args"], f"{where}.score_args", f"score '{score}'")
    if aux_size is not None and hpo["holdout"] >= aux_size:
        raise ConfigError(
            f"config error at {where}.holdout: {hpo['holdout']} held-out images leave none of the "
            f"{aux_size}-image aux pool to train on"
        )


def check_parameters(cfg: Mapping[str, Any]) -> None:
    """Check model and method keyword arguments against their signatures.

    This imports the model and method modules (and so torch); training jobs call it first thing.
    """
    from oodflow.methods import METHODS
    from oodflow.models import MODELS

    for run, spec in cfg["runs"].items():
        _check_kwargs(
            MODELS.get(spec["model"]),
            spec["model_args"],
            f"runs.{run}.model_args",
            f"model '{spec['model']}'",
        )
        _check_kwargs(
            METHODS.get(spec["method"]),
            spec["method_args"],
            f"runs.{run}.method_args",
            f"method '{spec['method']}'",
        )


def read(path: str | Path) -> dict:
    """The mapping of the YAML config file ``path``, unvalidated.

    Raises:
        ConfigError: a syntax error, a tab, a repeated key, an empty file or a top level that is
            not a mapping, naming the file and the line (:func:`oodflow.yamlfile.load_mapping`).
    """
    try:
        return yamlfile.load_mapping(path, "a config")
    except yamlfile.YAMLFileError as err:
        raise ConfigError(str(err)) from None


def load(path: str | Path) -> dict:
    """Read a YAML config file and validate it (errors name the file, then the key)."""
    raw = read(path)
    try:
        return validate(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def main(argv: list[str] | None = None) -> int:
    """``python -m oodflow.config CONFIG...``: check config files as the workflow does before any job.

    Snakemake reads a ``--configfile`` itself and reports a YAML error without the file or line;
    this names both (and refuses a repeated key, which Snakemake accepts).
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m oodflow.config", description=main.__doc__)
    parser.add_argument("configs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    status = 0
    for path in args.configs:
        try:
            load(path)
        except (ConfigError, FileNotFoundError) as err:
            print(err, file=sys.stderr)
            status = 1
        else:
            print(f"{path}: valid")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
