"""Registries: choose datasets, models, methods and scores by name.

A registry maps a short name to an object. Entries are given either as the object itself or as a
lazy ``"module:attribute"`` string, so that listing or validating names (done by the workflow before
any job runs) never imports torch. An unknown name is a :class:`KeyError` that lists the valid ones.

    >>> reg = Registry("colour", {"red": "builtins:str"})
    >>> reg.names()
    ['red']
    >>> reg.get("blue")
    Traceback (most recent call last):
    ...
    KeyError: "unknown colour 'blue'; valid names: red"
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any


class Registry:
    """A name -> object table whose entries may be imported lazily."""

    def __init__(self, kind: str, entries: dict[str, Any] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = dict(entries or {})

    def register(self, name: str | None = None) -> Callable[[Any], Any]:
        """Decorator that registers an object under ``name`` (default: its ``__name__``)."""

        def wrap(obj: Any) -> Any:
            key = name or obj.__name__
            current = self._entries.get(key)
            if current is not None and current is not obj and not isinstance(current, str):
                raise KeyError(f"{self.kind} '{key}' is registered twice")
            self._entries[key] = obj
            return obj

        return wrap

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def check(self, name: str) -> None:
        """Raise a helpful :class:`KeyError` unless ``name`` is registered (imports nothing)."""
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} '{name}'; valid names: {', '.join(self.names())}")

    def get(self, name: str) -> Any:
        self.check(name)
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[name] = entry
        return entry

    def unknown(self, names: Iterable[str]) -> list[str]:
        """The names in ``names`` that are not registered."""
        return [n for n in names if n not in self._entries]
