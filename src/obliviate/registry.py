"""One generic registry for models, benchmarks, methods and metrics.

Entries are registered by name (with optional aliases), either as objects or lazily as
``"module:attr"`` strings so that ``obliviate ls`` never imports torch-heavy modules it does not
need. A miss raises :class:`KeyError` with "did you mean" and the list of valid names.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Generic, TypeVar, cast

from obliviate.errors import ConfigError

T = TypeVar("T")


class UnknownNameError(ConfigError, KeyError):
    """A name is not in a registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def suggest(name: str, choices: list[str]) -> str:
    """Return a "did you mean" hint for ``name`` among ``choices`` (empty if none is close)."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class Registry(Generic[T]):
    """A named collection of things of one kind.

    Args:
        kind: what is registered ("method", "metric", ...), used in error messages.
        base: the class every entry must subclass (or a lazy ``"module:attr"`` naming it); checked
            when an entry is first resolved, so a lazy entry costs no import until it is used.
    """

    def __init__(self, kind: str, base: type | str | None = None) -> None:
        self.kind = kind
        self._base = base
        self._entries: dict[str, T | str] = {}
        self._aliases: dict[str, str] = {}
        self._help: dict[str, str] = {}

    def add(
        self, name: str, obj: T | str, *, aliases: tuple[str, ...] = (), help: str = ""
    ) -> None:
        """Register ``obj`` (or a lazy ``"module:attr"`` string) under ``name`` and its aliases."""
        for key in (name, *aliases):
            if key in self._entries or key in self._aliases:
                existing = self._entries.get(key)
                if existing is obj or (key in self._aliases and self._aliases[key] == name):
                    continue
                raise ValueError(f"{self.kind} {key!r} is registered twice")
        if not isinstance(obj, str):
            self._check(name, obj)
        self._entries[name] = obj
        for alias in aliases:
            self._aliases[alias] = name
        if help:
            self._help[name] = help
        elif not isinstance(obj, str) and getattr(obj, "__doc__", None):
            self._help[name] = (obj.__doc__ or "").strip().splitlines()[0]

    def canonical(self, name: str) -> str:
        """Resolve an alias to its registered name; raise with suggestions on a miss."""
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        choices = sorted([*self._entries, *self._aliases])
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}.{suggest(name, choices)} "
            f"Valid {self.kind}s: {', '.join(sorted(self._entries))}."
        )

    def get(self, name: str) -> T:
        """Return the entry for ``name``, importing it if it was registered lazily."""
        key = self.canonical(name)
        entry = self._entries[key]
        if isinstance(entry, str):
            loaded = cast(T, _import(entry))  # what it is, _check confirms against the base class
            self._check(key, loaded)
            self._entries[key] = loaded
            return loaded
        return entry

    def _check(self, name: str, obj: object) -> None:
        """Refuse an entry that is not a subclass of the registry's base class."""
        if self._base is None:
            return
        base = _import(self._base) if isinstance(self._base, str) else self._base
        if not isinstance(base, type):
            raise TypeError(f"the base of the {self.kind} registry, {self._base!r}, is not a class")
        if not (isinstance(obj, type) and issubclass(obj, base)):
            raise TypeError(
                f"{self.kind} {name!r} must be a subclass of {base.__name__}, got {obj!r}"
            )

    def help(self, name: str) -> str:
        """One-line description of an entry."""
        key = self.canonical(name)
        if key not in self._help:
            obj = self.get(key)
            doc = getattr(obj, "__doc__", None) or ""
            self._help[key] = doc.strip().splitlines()[0] if doc.strip() else ""
        return self._help[key]

    def names(self) -> list[str]:
        """Registered names, sorted (aliases excluded)."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def _import(target: str) -> object:
    """The object a lazy ``"module:attr"`` entry names."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
