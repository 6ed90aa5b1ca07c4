"""``obliviate ls``: list what is registered."""

from __future__ import annotations

import argparse
from typing import Any

from obliviate.registry import Registry

KINDS = ("models", "benchmarks", "methods", "metrics", "attacks")


def registry_for(kind: str) -> Registry:
    """The registry of one kind of thing (importing it registers its entries)."""
    if kind == "models":
        from obliviate.models.registry import MODELS

        return MODELS
    if kind == "benchmarks":
        from obliviate.benchmarks import BENCHMARKS

        return BENCHMARKS
    if kind == "methods":
        from obliviate.methods import METHODS

        return METHODS
    if kind == "metrics":
        from obliviate.metrics import METRICS

        return METRICS
    if kind == "attacks":
        from obliviate.attacks import ATTACKS

        return ATTACKS
    raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")


def add_parser(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("kind", choices=KINDS, help="what to list")
    return p


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from obliviate.errors import ConfigError

    if extra:
        raise ConfigError(f"`obliviate ls` takes no options, got {' '.join(extra)}")
    try:
        reg = registry_for(args.kind)
    except ImportError as e:
        raise ConfigError(f"no {args.kind} are available in this version ({e})") from e
    width = max((len(n) for n in reg.names()), default=0)
    for n in reg.names():
        print(f"{n:<{width}}  {reg.help(n)}")
    if args.kind == "metrics":
        from obliviate.metrics import DIFFERENCES

        print("\nWhere these definitions differ from open-unlearning's, on purpose:")
        for line in DIFFERENCES:
            print(f"- {line}")
    return 0
