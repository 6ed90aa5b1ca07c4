"""Subcommands generated from a run kind's typed request: an option is declared once, as a field.

A request is a dataclass whose fields are typed, defaulted and documented by a ``# comment`` on
the same line (:func:`obliviate.config.field_help`). :func:`add_request` turns each field into an
``argparse`` option (``--field-name``; ``store_true`` for a bool; ``choices`` for a ``Literal``;
the help text from the comment, with the default), and :func:`request_from` builds the request
back from the parsed arguments through :func:`obliviate.config.build`, so the command line and
the Python API check every value the same way::

    @dataclass
    class AttackRequest(OutputOptions):
        run: str = ""  # the run folder (evaluated; its model in RUN/model)
        seed: int = 0  # seeds every attack
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Literal, TypeVar, get_args, get_origin

from obliviate.config import build, field_help

R = TypeVar("R")


def request_help(cls: type) -> dict[str, str]:
    """Each field's help, from the class and the classes it extends."""
    helps: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if dataclasses.is_dataclass(base):
            helps.update(field_help(base))
    return helps


def add_request(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    required: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    flags: dict[str, str] | None = None,
) -> None:
    """Add one option per field of the request ``cls`` (except ``exclude``) to ``parser``.

    Args:
        parser: the subcommand's parser.
        cls: the request dataclass.
        required: fields the command line must give.
        exclude: fields the subcommand sets itself (or that have no command-line form).
        flags: a flag name other than ``--field-name`` for a field (``{"attacks": "--attack"}``).
    """
    hints = typing.get_type_hints(cls)
    helps = request_help(cls)
    for f in dataclasses.fields(cls):
        if f.name in exclude or not f.init:
            continue
        tp = hints[f.name]
        flag = (flags or {}).get(f.name, "--" + f.name.replace("_", "-"))
        text = helps.get(f.name, "")
        if tp is bool:
            parser.add_argument(flag, action="store_true", help=text, dest=f.name)
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        choices = _choices(tp)
        shown = (
            f" (default: {default})" if default not in (None, "", ()) and choices is None else ""
        )
        parser.add_argument(
            flag,
            required=f.name in required,
            default=None,
            choices=choices,
            metavar=None if choices else f.name.upper(),
            help=text + shown,
            dest=f.name,
        )


def _choices(tp: Any) -> list[str] | None:
    """The choices of a ``Literal`` (or an optional one); None for any other type."""
    if get_origin(tp) is Literal:
        return [str(c) for c in get_args(tp)]
    args = [a for a in get_args(tp) if a is not type(None)]
    if len(args) == 1 and get_origin(args[0]) is Literal:
        return [str(c) for c in get_args(args[0])]
    return None


def request_from(cls: type[R], args: argparse.Namespace, where: str = "", **given: Any) -> R:
    """The request ``cls`` from parsed arguments (the options the user gave) and ``given`` values."""
    names = {f.name for f in dataclasses.fields(typing.cast(Any, cls))}
    values = {
        k: v for k, v in vars(args).items() if k in names and v is not None and v is not False
    }
    out: R = build(cls, {**values, **given}, where)
    return out


__all__ = ["add_request", "request_from", "request_help"]
