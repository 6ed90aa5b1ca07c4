"""The results of a run: ``RUN/run.json``, read and written atomically, merged metric by metric.

Schema of the keys this module owns (other keys of run.json, such as the config or the training
log, are left untouched)::

    "metrics":     {KEY: {"aggregate": float | null, "values": [float | null, ...],
                          "item_ids": [str, ...], "direction": str, "description": str,
                          "extra": {...}}}
    "generations": {SPLIT: {ITEM_ID: generated text}}
    "skipped":     {KEY: why the metric could not run}
    "eval":        {"benchmark", "benchmark_version", "plan", "options", "reference", "model",
                    "seconds": {stage: seconds}}

KEY is ``split/name`` (``forget/rouge``) or a bare name (``forget_quality``). Non-finite numbers
are stored as null, so the file is strict JSON. Writers take a file lock and replace the file in
one ``os.replace``, so a reader never sees half a file and concurrent writers do not lose keys.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obliviate.errors import ConfigError, DataError
from obliviate.registry import suggest

if TYPE_CHECKING:
    from obliviate.metrics.base import Metric, MetricResult

RUN_FILE = "run.json"


def run_file(path: str | os.PathLike) -> Path:
    """``RUN/run.json`` for a run folder, or the path itself when it names a ``.json`` file."""
    p = Path(path).expanduser()
    return p if p.suffix == ".json" else p / RUN_FILE


def load_run(path: str | os.PathLike, *, missing_ok: bool = False) -> dict[str, Any]:
    """Read a run.json (from a run folder or the file itself).

    Args:
        path: the run folder or its run.json.
        missing_ok: return ``{}`` when the file does not exist (instead of raising DataError).
    """
    f = run_file(path)
    if not f.is_file():
        if missing_ok:
            return {}
        raise DataError(f"{f} does not exist: pass a run folder written by `obliviate eval` or its run.json")
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{f}: line {e.lineno}: invalid JSON ({e.msg})") from e
    if not isinstance(data, dict):
        raise DataError(f"{f}: the top level must be an object")
    return data


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A reader never sees half a file, and a crash leaves the previous version in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8", newline="")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_run(path: str | os.PathLike, data: Mapping[str, Any]) -> Path:
    """Write ``data`` as run.json atomically (temporary file, then ``os.replace``); returns the file."""
    return write_atomic(run_file(path), json.dumps(_strict(data), indent=1, ensure_ascii=False, allow_nan=False))


def update_run(path: str | os.PathLike, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Read, change and write run.json under a file lock; returns the new data."""
    from filelock import FileLock

    f = run_file(path)
    f.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(f.with_name(f".{f.name}.lock"))):
        data = change(load_run(f, missing_ok=True))
        save_run(f, data)
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


def load_reference(reference: str | os.PathLike | Mapping[str, Any] | Results) -> dict[str, Any]:
    """The reference run's data from a run folder, a run.json, a mapping or :class:`Results`."""
    if isinstance(reference, Results):
        return reference.data
    if isinstance(reference, Mapping):
        return dict(reference)
    f = run_file(reference)
    if not f.is_file():
        raise ConfigError(
            f"reference {reference} has no {RUN_FILE}: evaluate the retain-only model first "
            f"(obliviate eval --model RETAIN_MODEL --benchmark B --out RETAIN_RUN) and pass RETAIN_RUN"
        )
    data = load_run(f)
    if not data.get("metrics"):
        raise ConfigError(f"reference {f} holds no metrics; evaluate the retain-only model into it first")
    return data


@dataclass
class Results:
    """An evaluated run: run.json's data and where it lives (None when kept in memory)."""

    data: dict[str, Any]
    path: Path | None = None

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        return self.data.get("metrics", {})

    @property
    def generations(self) -> dict[str, dict[str, str]]:
        return self.data.get("generations", {})

    @property
    def skipped(self) -> dict[str, str]:
        return self.data.get("skipped", {})

    def entry(self, key: str) -> dict[str, Any]:
        """The stored entry of a metric, with "did you mean" on a miss."""
        if key not in self.metrics:
            hint = suggest(key, list(self.metrics))
            why = f" It was skipped: {self.skipped[key]}." if key in self.skipped else ""
            raise KeyError(f"no metric {key!r} in these results.{hint}{why}")
        return self.metrics[key]

    def aggregate(self, key: str) -> float:
        """A metric's aggregate (NaN when it was stored as null)."""
        value = self.entry(key)["aggregate"]
        return math.nan if value is None else float(value)

    def values(self, key: str) -> list[float]:
        """A metric's per-item values (NaN where stored as null)."""
        return [math.nan if v is None else float(v) for v in self.entry(key)["values"]]

    def per_item(self, key: str) -> dict[str, float]:
        """A metric's values keyed by item id."""
        return dict(zip(self.entry(key)["item_ids"], self.values(key)))

    def rows(self) -> list[tuple[str, float, str]]:
        """(key, aggregate, direction) for every metric, in storage order."""
        return [(k, self.aggregate(k), e.get("direction", "")) for k, e in self.metrics.items()]
