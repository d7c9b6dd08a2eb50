"""YAML reading with libyaml's C parser where PyYAML has it (10x faster than the pure-Python one,
which matters for the Snakefile: the schema is read on every ``snakemake`` call).

Both readers refuse a mapping that repeats a key (plain PyYAML keeps the last value silently, so a
config with two ``epochs:`` would run the one further down without a word). :func:`load_mapping`
reads a file whose top level must be a mapping (a config) and names the file, the line and the
column of every problem: a syntax error, a tab in the indentation, a repeated key, an empty file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """The safe loader, refusing repeated keys in a mapping."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if first is not None:
                    raise ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found the key {key!r} a second time (first at line {first.start_mark.line + 1})",
                        key_node.start_mark,
                    )
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


class YAMLFileError(ValueError):
    """A YAML file that cannot be read as asked; the message names the file and, where known, the
    line and column (``path:line:column: problem``)."""


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` of ``text`` (same types, same :class:`yaml.YAMLError` on bad input), except
    that a mapping repeating a key is a :class:`yaml.constructor.ConstructorError`."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader)


def describe(err: yaml.YAMLError, path: str | os.PathLike, text: str | None = None) -> str:
    """``path:line:column: problem`` for a YAML error (lines and columns from 1); ``text``, the
    file's text, lets it point out a tab on that line."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    message = f"{problem} ({context})" if context and "second time" not in problem else problem
    lines = (text or "").splitlines()
    if (mark is not None and mark.line < len(lines) and "\t" in lines[mark.line]) or "'\\t'" in problem:
        message += " (the line holds a tab: YAML indents with spaces only, replace it)"
    return f"{where}: not valid YAML: {message}"


def load_mapping(path: str | os.PathLike, what: str = "a YAML file") -> dict[str, Any]:
    """The mapping at the top level of the YAML file ``path`` (``what`` it is, for messages).

    Raises:
        FileNotFoundError: no such file.
        YAMLFileError: a syntax error, a tab, a repeated key, an empty file, or a top level that is
            not a mapping; the message names the file and the line.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = safe_load(text)
    except yaml.YAMLError as err:
        raise YAMLFileError(describe(err, path, text)) from None
    if data is None:
        raise YAMLFileError(f"{path}: empty (no YAML content); {what} is a mapping of keys to values")
    if not isinstance(data, dict):
        raise YAMLFileError(
            f"{path}:1:1: {what} must be a mapping of keys to values at the top level, "
            f"not a {type(data).__name__}"
        )
    return data
