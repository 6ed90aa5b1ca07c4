"""The run record's layout as types: one dataclass per section of run.json, and its JSON Schema.

run.json is one object (schema :data:`~obliviate.record.store.SCHEMA_VERSION`) whose sections are
described by :class:`RunJson`; each section is a dataclass below. :func:`section` reads a section
tolerantly (a key a run never wrote takes its default, a value of the wrong shape reads as the
default too), so every reader gets typed values without raw ``.get`` chains, and
:func:`json_schema` derives the published JSON Schema (``docs/run.schema.json``, checked by a test
to be up to date) from these same types, so the schema and the code cannot drift apart.

Which run kind writes which section:

- every kind: ``schema``, ``kind``, ``status``, ``started_at``, ``finished_at``, ``failure``;
- ``unlearn``: ``config``, ``seed``, ``versions``, ``argv``, ``model``, ``benchmark``,
  ``prompt_format``, ``processes``, ``timings``, ``train``;
- ``eval`` (alone or into an unlearning run's folder): ``metrics``, ``generations``, ``skipped``,
  ``eval``;
- ``attack`` (into an evaluated run): ``attacks``, ``attack_verdict``;
- the demo and the report: ``role``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

from obliviate.record.store import SCHEMA_VERSION

S = TypeVar("S")


@dataclass
class Failure:
    """Why a run ended without a result."""

    error: str = ""  # the exception's type
    message: str = ""  # what it said


@dataclass
class ModelInfo:
    """The model an unlearning run started from, and where the unlearned one went."""

    spec: str = ""  # the model as the caller named it
    path: str | None = None  # its folder, when it is one
    source: str = ""  # where it was loaded from
    output: str | None = None  # RUN/model (None: kept in memory)


@dataclass
class BenchmarkInfo:
    """The benchmark an unlearning run used: its name, version and content fingerprint."""

    spec: str = ""  # the benchmark as the caller named it
    name: str = ""
    version: str = ""
    fingerprint: str = ""  # SHA-256 of every split's content
    metadata: dict[str, Any] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)  # forget, retain, holdout


@dataclass
class TrainInfo:
    """What the training loop did."""

    steps: int = 0
    stopped: str = ""  # completed, max_steps, a stopping rule, or why it diverged
    bf16: bool = False  # trained under bf16 autocast
    attention: str | None = None  # the attention kernel training used
    seconds: float = 0.0
    log: list[dict[str, Any]] = field(
        default_factory=list
    )  # per logged step: losses, grad norm, lr
    extra: dict[str, Any] = field(
        default_factory=dict
    )  # what the method computed (RMU's coefficient...)


@dataclass
class MetricEntry:
    """One metric's result: its aggregate and its per-item values."""

    aggregate: float | None = None  # null when not finite
    values: list[float | None] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    direction: str = ""  # higher, lower, closer to the reference...
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalInfo:
    """How the stored metrics were computed, and what they belong to."""

    benchmark: str = ""
    benchmark_version: str = ""
    plan: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # EvalOptions
    reference: str | None = None  # the retain-only model's run (absolute), "given", or null
    model: str = ""  # the evaluated model's source
    precision: str | None = None  # bf16 or fp32
    processes: int = 1
    placement: dict[str, int] | None = None  # device -> modules (eval.device_map)
    identity: dict[str, Any] = field(
        default_factory=dict
    )  # model fingerprint, benchmark content, options
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class AttackEntry:
    """One attack applied to the unlearned and the retain-only model, with both models' attacked scores."""

    attack: str = ""  # the registered attack
    kind: str = ""  # weights, prompts or probe
    options: dict[str, Any] = field(default_factory=dict)
    identity: dict[str, Any] = field(
        default_factory=dict
    )  # what makes it reusable (with its digest)
    unlearned: dict[str, dict[str, Any]] | None = (
        None  # metric key -> entry, on the attacked unlearned model
    )
    reference: dict[str, dict[str, Any]] | None = None  # the same on the attacked retain-only model
    unlearned_details: dict[str, Any] = field(default_factory=dict)
    reference_details: dict[str, Any] = field(default_factory=dict)
    unlearned_seconds: float | None = None
    reference_seconds: float | None = None
    items: list[str] | None = (
        None  # the forget items the verdict may judge from this attack (null: all)
    )
    item_of: dict[str, str] | None = None  # attacked item id -> forget item id
    seconds: float | None = None


@dataclass
class ItemVerdict:
    """One forget item under the attacks."""

    verdict: str = ""  # removed, suppressed or kept
    recovered_by: list[str] = field(default_factory=list)  # attacks under which it showed again
    scores: dict[str, float] = field(default_factory=dict)  # condition -> the item's score


@dataclass
class Verdict:
    """Each forget item's verdict: removed, suppressed (an attack brings it back) or kept."""

    metric: str = ""  # the per-item score it reads
    quantile: float = 0.95  # of the retain-only model's scores, that an item must exceed
    thresholds: dict[str, float | None] = field(
        default_factory=dict
    )  # condition -> threshold (null: no scores)
    conditions: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # removed, suppressed, kept
    items: dict[str, ItemVerdict] = field(default_factory=dict)


@dataclass
class RunJson:
    """Every section of run.json (each optional: a run kind writes its own)."""

    schema: int = SCHEMA_VERSION
    kind: str = ""  # unlearn, eval, prepare, or a newer run kind
    status: str = (
        ""  # running, completed, stopped, diverged, failed, interrupted ("" for an evaluation)
    )
    started_at: str | None = None
    finished_at: str | None = None
    failure: Failure | None = None
    identity: dict[str, Any] = field(
        default_factory=dict
    )  # what a resume must match (run kinds of runs/base.py)
    digest: str | None = None  # its digest
    role: str | None = None  # target, retain or unlearned (the report's role)
    config: dict[str, Any] = field(
        default_factory=dict
    )  # the resolved options (a resume compares them)
    seed: int | None = None
    versions: dict[str, str] = field(default_factory=dict)  # python and package versions
    argv: list[str] | None = None  # the command line, when the run came from one
    model: ModelInfo | None = None
    benchmark: BenchmarkInfo | None = None
    prompt_format: str | None = None
    processes: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    train: TrainInfo | None = None
    metrics: dict[str, MetricEntry] = field(default_factory=dict)  # split/name or name -> entry
    generations: dict[str, dict[str, str]] = field(default_factory=dict)  # split -> item id -> text
    skipped: dict[str, str] = field(default_factory=dict)  # metric key -> why it could not run
    eval: EvalInfo | None = None
    attacks: dict[str, AttackEntry] = field(default_factory=dict)  # attack label -> entry
    attack_verdict: Verdict | None = None


def section(cls: type[S], data: Any) -> S:
    """``data`` read as the section ``cls``: missing keys and values of the wrong shape take defaults."""
    if not isinstance(data, Mapping):
        return cls()
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(typing.cast(Any, cls)):
        if f.name in data:
            ok, value = _read(hints[f.name], data[f.name])
            if ok:
                kwargs[f.name] = value
    return cls(**kwargs)


def _read(tp: Any, value: Any) -> tuple[bool, Any]:
    """(whether ``value`` fits ``tp``, the value read as ``tp``)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True, value
    if origin in (Union, types.UnionType):
        for arg in args:
            ok, read = _read(arg, value)
            if ok:
                return True, read
        return False, None
    if tp is type(None):
        return value is None, None
    if dataclasses.is_dataclass(tp):
        return isinstance(value, Mapping), section(typing.cast(Any, tp), value)
    if origin is dict:
        if not isinstance(value, Mapping):
            return False, None
        out = {}
        for k, v in value.items():
            ok, read = _read(args[1], v)
            if ok:
                out[str(k)] = read
        return True, out
    if origin is list:
        if not isinstance(value, list):
            return False, None
        out_list = []
        for v in value:
            ok, read = _read(args[0], v)
            if ok:
                out_list.append(read)
        return True, out_list
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool), (
            float(value) if isinstance(value, int | float) else None
        )
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is str:
        return isinstance(value, str), value
    return False, None


def malformed(data: Mapping[str, Any]) -> list[str]:
    """The top-level sections of ``data`` that do not follow :class:`RunJson`, to the last value
    (``metrics/forget/prob/values``: a metric whose values are not numbers)."""
    hints = typing.get_type_hints(RunJson)
    found: list[str] = []
    for name in hints:
        if name in data:
            found.extend(_where(hints[name], data[name], name))
    return found


def _where(tp: Any, value: Any, path: str) -> list[str]:
    """Where ``value`` does not fit ``tp`` (empty when it fits entirely)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return []
    if origin in (Union, types.UnionType):
        wrong = [_where(a, value, path) for a in args]
        return [] if any(not w for w in wrong) else wrong[0]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            return [path]
        hints = typing.get_type_hints(tp)
        return [
            w
            for f in dataclasses.fields(tp)
            if f.name in value
            for w in _where(hints[f.name], value[f.name], f"{path}/{f.name}")
        ]
    if origin is dict:
        if not isinstance(value, Mapping):
            return [path]
        return [w for k, v in value.items() for w in _where(args[1], v, f"{path}/{k}")]
    if origin is list:
        if not isinstance(value, list):
            return [path]
        bad = [w for v in value for w in _where(args[0], v, path)]
        return bad[:1]
    return [] if _read(tp, value)[0] else [path]


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of run.json, derived from :class:`RunJson` and its sections."""
    defs: dict[str, Any] = {}
    root = _schema_of(RunJson, defs)
    top = defs.pop(RunJson.__name__)
    del root
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://obliviate.dev/run.schema.json",
        "title": "obliviate run record (run.json)",
        "description": (RunJson.__doc__ or "").strip() + f" Schema version {SCHEMA_VERSION}.",
        **top,
        "$defs": dict(sorted(defs.items())),
    }


def schema_text() -> str:
    """The published schema file's text (``docs/run.schema.json``)."""
    import json

    return json.dumps(json_schema(), indent=1, ensure_ascii=False) + "\n"


def _schema_of(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return {}
    if origin in (Union, types.UnionType):
        return {"anyOf": [_schema_of(a, defs) for a in args]}
    if tp is type(None):
        return {"type": "null"}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # begun: a section that refers back to itself stops here
            hints = typing.get_type_hints(tp)
            props = {}
            for f in dataclasses.fields(tp):
                props[f.name] = _schema_of(hints[f.name], defs)
            defs[name] = {
                "type": "object",
                "description": (tp.__doc__ or "").strip(),
                "properties": props,
            }
        return {"$ref": f"#/$defs/{name}"}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema_of(args[1], defs)}
    if origin is list:
        return {"type": "array", "items": _schema_of(args[0], defs)}
    simple = {float: "number", int: "integer", bool: "boolean", str: "string"}
    if tp in simple:
        return {"type": simple[tp]}
    raise TypeError(f"no JSON Schema for {tp!r}")


__all__ = [
    "AttackEntry",
    "BenchmarkInfo",
    "EvalInfo",
    "Failure",
    "ItemVerdict",
    "MetricEntry",
    "ModelInfo",
    "RunJson",
    "TrainInfo",
    "Verdict",
    "json_schema",
    "malformed",
    "schema_text",
    "section",
]


if __name__ == "__main__":  # python -m obliviate.record.schema > docs/run.schema.json
    import sys

    sys.stdout.write(schema_text())
