"""The keyword parameters of a registered class or function, read without importing it.

Validating a config checks every run's ``model_args`` and ``method_args`` against the model's and
the method's signature before any job runs; importing those modules would import torch (seconds on
every ``snakemake`` call), so :func:`parameters` reads the signature from the module's source with
:mod:`ast` instead: names, kinds, literal defaults and annotations (as text). A test checks it
against :func:`inspect.signature` for every registered model and method.

:func:`type_problem` checks a config value against a simple annotation (``int``, ``float``,
``bool``, ``str``, ``None``, their ``|`` unions, ``Optional[...]`` and ``Sequence``/``list``/
``tuple`` of those); any other annotation is not checked here (the job's own check remains).
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Param:
    """One parameter: its kind (an :class:`inspect.Parameter` kind), literal default (``EMPTY``:
    none, or not a literal) and annotation text (``None``: none)."""

    name: str
    kind: Any
    default: Any = EMPTY
    annotation: str | None = None


def parameters(entry: Any) -> list[Param] | None:
    """The parameters of a registry entry (an object, or a lazy ``"module:attribute"`` string) that
    a caller passes: a class's ``__init__`` without ``self``. ``None`` where the source does not
    say (an alias, an ``__init__`` inherited from another module)."""
    if not isinstance(entry, str):
        return _from_object(entry)
    module, _, attr = entry.partition(":")
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    defs = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)}
    node, seen = defs.get(attr), set()
    while isinstance(node, ast.ClassDef) and node.name not in seen:
        seen.add(node.name)
        init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        if init is not None:
            return _from_ast(init)[1:]
        bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
        node = defs.get(bases[0]) if len(bases) == 1 else None
    return _from_ast(node) if isinstance(node, ast.FunctionDef) else None


def _from_object(obj: Any) -> list[Param]:
    params = inspect.signature(obj).parameters.values()
    return [
        Param(
            p.name,
            p.kind,
            p.default,
            None if p.annotation is EMPTY else p.annotation if isinstance(p.annotation, str) else None,
        )
        for p in params
    ]


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return EMPTY
    try:
        return ast.literal_eval(node)
    except ValueError:
        return EMPTY


def _from_ast(fn: ast.FunctionDef) -> list[Param]:
    a, kinds = fn.args, inspect.Parameter
    positional = [*a.posonlyargs, *a.args]
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    out = [
        Param(
            arg.arg,
            kinds.POSITIONAL_ONLY if i < len(a.posonlyargs) else kinds.POSITIONAL_OR_KEYWORD,
            _literal(default) if default is not None else EMPTY,
            ast.unparse(arg.annotation) if arg.annotation else None,
        )
        for i, (arg, default) in enumerate(zip(positional, defaults, strict=True))
    ]
    if a.vararg is not None:
        out.append(Param(a.vararg.arg, kinds.VAR_POSITIONAL))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        annotation = ast.unparse(arg.annotation) if arg.annotation else None
        out.append(Param(arg.arg, kinds.KEYWORD_ONLY, _literal(default), annotation))
    if a.kwarg is not None:
        out.append(Param(a.kwarg.arg, kinds.VAR_KEYWORD))
    return out


# ------------------------------------------------------------------------------------------- types
_SIMPLE = {"int", "float", "bool", "str", "None"}
_SEQUENCES = {"Sequence", "list", "tuple", "collections.abc.Sequence", "typing.Sequence"}


def _accepted(node: ast.expr) -> list[tuple[str, ...]] | None:
    """The alternatives of an annotation: ``("int",)`` or ``("seq", "float")``; ``None``: not simple."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _accepted(node.left), _accepted(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Constant) and node.value is None:
        return [("None",)]
    if isinstance(node, ast.Name) and node.id in _SIMPLE:
        return [(node.id,)]
    if isinstance(node, ast.Subscript):
        base = ast.unparse(node.value)
        inner = node.slice
        if base in ("Optional", "typing.Optional"):
            got = _accepted(inner)
            return None if got is None else [*got, ("None",)]
        if base in _SEQUENCES:
            if isinstance(inner, ast.Tuple):  # tuple[float, ...] (or a fixed tuple: not simple)
                elts = inner.elts
                if len(elts) != 2 or not (isinstance(elts[1], ast.Constant) and elts[1].value is Ellipsis):
                    return None
                inner = elts[0]
            got = _accepted(inner)
            if got is None or any(len(alt) != 1 for alt in got):
                return None
            return [("seq", *(alt[0] for alt in got))]
    return None


def _is(value: Any, name: str) -> bool:
    if name == "None":
        return value is None
    if name == "bool":
        return isinstance(value, bool)
    if name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def _matches(value: Any, alt: tuple[str, ...]) -> bool:
    if alt[0] != "seq":
        return _is(value, alt[0])
    return isinstance(value, list | tuple) and all(any(_is(v, n) for n in alt[1:]) for v in value)


def type_problem(value: Any, annotation: str | None) -> str | None:
    """Why ``value`` (from YAML) does not fit ``annotation``, or ``None`` (also for annotations
    that are not simple)."""
    if annotation is None:
        return None
    try:
        alts = _accepted(ast.parse(annotation, mode="eval").body)
    except SyntaxError:
        return None
    if alts is None or any(_matches(value, alt) for alt in alts):
        return None
    wanted = " or ".join(f"a list of {' or '.join(a[1:])}" if a[0] == "seq" else a[0] for a in alts)
    problem = f"{value!r} is not {wanted}"
    if isinstance(value, str) and any(a[0] in ("float", "int") for a in alts):
        try:
            float(value)
        except ValueError:
            pass
        else:  # YAML 1.1 (PyYAML) reads 1e-3 as text: it wants a dot (1.0e-3)
            problem += f" (YAML reads {value} as text; write a number such as {float(value)!r})"
    return problem
