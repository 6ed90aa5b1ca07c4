"""Typed dataclass configs, YAML presets and dotted command-line overrides.

Every option lives in a dataclass field with a type, a default and a one-line comment. Values
arrive from YAML files (``--config run.yaml``) and dotted flags (``--train.lr 1e-4``,
``--method.beta 0.2``); both go through :func:`build`, which rejects an unknown key or a value of
the wrong type with "did you mean" and the valid choices, before any model is loaded.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from obliviate.errors import ConfigError
from obliviate.registry import suggest

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def field_help(cls: type) -> dict[str, str]:
    """One-line help of each field, read from the ``# comment`` after it in the class source."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    helps: dict[str, str] = {}
    for m in re.finditer(r"^\s+(\w+)\s*:[^=\n]*=[^#\n]*#\s*(.+)$", source, re.M):
        helps[m.group(1)] = m.group(2).strip()
    return helps


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in get_args(tp):
                return None
        errors = []
        for a in args:
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: cannot read {value!r}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            hint = suggest(str(value), [str(c) for c in choices])
            listed = ", ".join(map(str, choices))
            raise ConfigError(f"{where}: {value!r} is not one of {listed}.{hint}")
        return value
    if origin in (tuple, list):
        (inner, *_) = get_args(tp) or (str,)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        items = [_coerce(v.strip() if isinstance(v, str) else v, inner, where) for v in value]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value))
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, dict | list):
            raise ConfigError(f"{where}: expected text, got {value!r}")
        return str(value)
    if tp is Path:
        return Path(str(value))
    return value


def build(cls: type, data: dict[str, Any] | None = None, where: str = "", owner: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, checking every key and type.

    Nested dataclass fields accept nested mappings. Raises ConfigError naming the dotted key.
    ``owner`` names what the options belong to (``"method ga"``) in the message given when ``cls``
    has no options at all.
    """
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        full = f"{where}.{key}" if where else key
        if not fields:
            raise ConfigError(
                f"unknown option {full!r}: {owner or where or cls.__name__} takes no options of "
                f"its own; remove --{full}"
            )
        raise ConfigError(
            f"unknown option {full!r}.{suggest(key, list(fields))} "
            f"Valid options{' of ' + where if where else ''}: {', '.join(fields)}."
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        tp = hints[name]
        full = f"{where}.{name}" if where else name
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{full} is a group of options; set its fields, e.g. --{full}.<name> VALUE"
                )
            kwargs[name] = build(tp, value, full)
        else:
            kwargs[name] = _coerce(value, tp, full)
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass config as plain data (for run.json and YAML)."""
    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple | list):
            return [conv(x) for x in v]
        if isinstance(v, Path):
            return str(v)
        return v

    return conv(obj)


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML preset; its top-level must be a mapping."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of option: value")
    return data


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """``set_dotted(t, "train.lr", "1e-4")`` sets ``t["train"]["lr"]``."""
    parts = key.split(".")
    node = tree
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--{key}: {p!r} is a single value, not a group of options")
        node = nxt
    node[parts[-1]] = value


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge two option trees (``over`` wins)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_dotted_args(args: list[str]) -> dict[str, Any]:
    """Turn ``["--train.lr", "1e-4", "--method.beta=0.2", "--flag"]`` into an option tree."""
    tree: dict[str, Any] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--") or len(a) < 3:
            raise ConfigError(f"unexpected argument {a!r}; options look like --train.lr 1e-4")
        key, eq, value = a[2:].partition("=")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
                i += 1
            else:
                value = "true"
        set_dotted(tree, key, value)
        i += 1
    return tree
