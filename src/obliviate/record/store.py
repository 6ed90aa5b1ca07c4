"""run.json on disk: read (upgraded to the current schema), written atomically, merged metric by metric.

:class:`~obliviate.record.recorder.Recorder` is the one writer of run data; it stores through
:func:`update_run`, which takes a file lock and replaces the file in one ``os.replace`` (a reader
never sees half a file, concurrent writers lose no keys) and stamps ``"schema": SCHEMA_VERSION``.
Readers go through :func:`read_run` and :class:`~obliviate.record.run.RunRecord`. Files written
before the schema existed (version 1) are upgraded on read; non-finite numbers are stored as null,
so the file is strict JSON. The layout is described by the types in :mod:`obliviate.record.schema`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obliviate.errors import ConfigError, DataError
from obliviate.files import write_atomic

if TYPE_CHECKING:
    from obliviate.metrics.base import Metric, MetricResult
    from obliviate.record.run import RunRecord

RUN_FILE = "run.json"
SCHEMA_VERSION = 2
"""Version of run.json's layout; 1 is every file written before the version was recorded."""


def run_file(path: str | os.PathLike) -> Path:
    """``RUN/run.json`` for a run folder, or the path itself when it names a ``.json`` file."""
    p = Path(path).expanduser()
    return p if p.suffix == ".json" else p / RUN_FILE


def read_run(path: str | os.PathLike, *, missing_ok: bool = False) -> dict[str, Any]:
    """Read a run.json (from a run folder or the file itself) as plain data, upgraded to this schema.

    The record package's own reader; everything else reads through
    :class:`~obliviate.record.run.RunRecord` (``ob.load_run`` returns one).

    Args:
        path: the run folder or its run.json.
        missing_ok: return ``{}`` when the file does not exist (instead of raising DataError).
    """
    given = Path(path).expanduser()
    if given.is_file() and given.suffix != ".json":
        raise DataError(f"{given} is a file, not a run folder or its run.json; pass the run folder")
    f = run_file(path)
    if not f.is_file():
        if missing_ok:
            return {}
        raise DataError(
            f"{f} does not exist: pass a run folder written by `obliviate eval` or its run.json"
        )
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{f}: line {e.lineno}: invalid JSON ({e.msg})") from e
    if not isinstance(data, dict):
        raise DataError(f"{f}: the top level must be an object")
    return upgrade(data, f)


def upgrade(data: dict[str, Any], source: object = "run.json") -> dict[str, Any]:
    """Run data in the current schema (older versions are converted; newer ones refused).

    Version 1 had no ``schema`` and no ``kind`` for evaluation-only runs.
    """
    version = data.get("schema", 1)
    if not isinstance(version, int) or version < 1:
        raise DataError(f"{source}: schema must be a positive integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise DataError(
            f"{source} was written with run-record schema {version}, newer than this obliviate "
            f"reads ({SCHEMA_VERSION}); upgrade obliviate"
        )
    if version == SCHEMA_VERSION:
        return data
    out = dict(data)
    if "kind" not in out:
        config = out.get("config")
        out["kind"] = (
            "unlearn"
            if isinstance(config, Mapping) and "method" in config
            else ("prepare" if "models" in out else "eval")
        )
    out["schema"] = SCHEMA_VERSION
    return out


def save_run(
    path: str | os.PathLike, data: Mapping[str, Any], *, schema: int = SCHEMA_VERSION
) -> Path:
    """Write ``data`` as run.json atomically (temporary file, then ``os.replace``); returns the file.

    The schema version is stamped first; non-finite numbers become null.
    """
    stamped = {"schema": schema, **{k: v for k, v in data.items() if k != "schema"}}
    return write_atomic(
        run_file(path), json.dumps(_strict(stamped), indent=1, ensure_ascii=False, allow_nan=False)
    )


def update_run(
    path: str | os.PathLike,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    schema: int = SCHEMA_VERSION,
) -> dict[str, Any]:
    """Read, change and write a record under a file lock; returns the new data.

    Only :class:`~obliviate.record.recorder.Recorder` calls this. A record of another schema
    (``protocol.json``) is read as it is, without run.json's upgrade.
    """
    from filelock import FileLock

    f = run_file(path)
    f.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(f.with_name(f".{f.name}.lock"))):
        if schema == SCHEMA_VERSION:
            current = read_run(f, missing_ok=True)
        else:
            current = json.loads(f.read_text(encoding="utf-8")) if f.is_file() else {}
        data = change(current)
        save_run(f, data, schema=schema)
    return data


def _strict(value: Any) -> Any:
    """Turn NaN and infinities into None (recursively), numpy scalars into Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):  # numpy scalars and arrays
        return _strict(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def metric_entry(metric: Metric, result: MetricResult) -> dict[str, Any]:
    """The run.json entry of one metric's result."""
    return _strict(
        {
            "aggregate": float(result.aggregate),
            "values": [float(v) for v in result.values],
            "item_ids": list(result.item_ids),
            "direction": metric.direction,
            "description": metric.description,
            "extra": dict(result.extra),
        }
    )


def merge_metrics(
    data: Mapping[str, Any],
    entries: Mapping[str, Mapping[str, Any]],
    generations: Mapping[str, Mapping[str, str]] | None = None,
    skipped: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A copy of run data with metric entries, generations and skip reasons merged in.

    A metric that now has an entry is removed from ``skipped``; generations are merged per split.
    """
    out = dict(data)
    out["metrics"] = {**out.get("metrics", {}), **{k: dict(v) for k, v in entries.items()}}
    gens = {k: dict(v) for k, v in out.get("generations", {}).items()}
    for split, texts in (generations or {}).items():
        gens.setdefault(split, {}).update(texts)
    out["generations"] = gens
    skips = {**out.get("skipped", {}), **(skipped or {})}
    out["skipped"] = {k: v for k, v in skips.items() if k not in out["metrics"]}
    return out


def load_reference(reference: str | os.PathLike | Mapping[str, Any] | RunRecord) -> dict[str, Any]:
    """The reference run's data from a run folder, a run.json, a mapping or :class:`RunRecord`."""
    from obliviate.record.run import RunRecord

    if isinstance(reference, RunRecord):
        return reference.data
    if isinstance(reference, Mapping):
        return dict(reference)
    f = run_file(reference)
    if not f.is_file():
        raise ConfigError(
            f"reference {reference} has no {RUN_FILE}: evaluate the retain-only model first "
            f"(obliviate eval --model RETAIN_MODEL --benchmark B --out RETAIN_RUN) and pass RETAIN_RUN"
        )
    data = read_run(f)
    if not data.get("metrics"):
        raise ConfigError(
            f"reference {f} holds no metrics; evaluate the retain-only model into it first"
        )
    from obliviate.record.schema import malformed

    damaged = malformed(data)
    if damaged:
        raise DataError(
            f"reference {f}: {damaged[0]} does not follow the run record's schema "
            "(docs/run.schema.json; for example values that are not numbers): the file is damaged or "
            "was not written by obliviate; evaluate the retain-only model again into a new folder"
        )
    return data


def finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is absent, not a number, NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None
