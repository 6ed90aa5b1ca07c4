"""The run record: ``RUN/run.json``, versioned, read and written atomically, merged metric by metric.

Every writer (unlearn, eval, prepare, the demo) goes through :func:`update_run` or
:func:`save_run`, which stamp ``"schema": SCHEMA_VERSION``; every reader (the Python API, the
report) goes through :func:`load_run` and :class:`RunRecord`, which read a missing or non-finite
value as ``None``. Files written before the schema existed (version 1) are upgraded on read.

Top-level keys: ``schema``, ``kind`` ("unlearn", "eval" or "prepare"), ``status``, ``config``,
``seed``, ``versions``, ``model``, ``benchmark`` (spec, name, version, fingerprint, sizes),
``prompt_format``, ``timings``, ``train`` (steps, stopped, bf16, seconds, log, and ``extra``: what
the method computed, such as RMU's steering coefficient), ``role`` (report role), and the keys of
an evaluation::

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
    from obliviate.data.task import UnlearningTask
    from obliviate.metrics.base import Metric, MetricResult

RUN_FILE = "run.json"
SCHEMA_VERSION = 2
"""Version of run.json's layout; 1 is every file written before the version was recorded."""


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
        config = out.get("config") if isinstance(out.get("config"), Mapping) else {}
        out["kind"] = "unlearn" if "method" in config else ("prepare" if "models" in out else "eval")
    out["schema"] = SCHEMA_VERSION
    return out


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
    """Write ``data`` as run.json atomically (temporary file, then ``os.replace``); returns the file.

    The schema version is stamped first; non-finite numbers become null.
    """
    stamped = {"schema": SCHEMA_VERSION, **{k: v for k, v in data.items() if k != "schema"}}
    return write_atomic(run_file(path), json.dumps(_strict(stamped), indent=1, ensure_ascii=False, allow_nan=False))


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


def load_reference(reference: str | os.PathLike | Mapping[str, Any] | RunRecord) -> dict[str, Any]:
    """The reference run's data from a run folder, a run.json, a mapping or :class:`RunRecord`."""
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
    data = load_run(f)
    if not data.get("metrics"):
        raise ConfigError(f"reference {f} holds no metrics; evaluate the retain-only model into it first")
    return data


def evaluation_identity(source: Any, task: UnlearningTask, options: Any, *, with_model: bool = True) -> dict[str, Any]:
    """What makes stored metrics reusable: the model's weights, the benchmark's content, the options.

    ``with_model=False`` leaves the model out (None): nothing can resume an evaluation kept in memory.
    """
    from dataclasses import asdict

    from obliviate.data.task import CORE_SPLITS
    from obliviate.models.io import model_fingerprint
    from obliviate.scoring import CachedScorer, ModelScorer, Scorer

    inner = source.inner if isinstance(source, CachedScorer) else source
    if not with_model:
        model = None
    elif not isinstance(inner, Scorer) or type(inner) is ModelScorer:
        model = model_fingerprint(inner)  # a loaded model, or the plain scorer of one: its weights
    else:  # an inference-time method's scorer: its kind, and the weights it wraps when it has them
        weights = model_fingerprint(inner) if hasattr(inner, "model") else getattr(inner, "source", "")
        model = f"scorer:{type(inner).__name__}:{weights}"
    return {
        "model": model,
        "benchmark": task.fingerprint(),
        "core": task.fingerprint(CORE_SPLITS),
        "options": asdict(options),
    }


def check_same_evaluation(out: Any, stored: Mapping[str, Any] | None, identity: Mapping[str, Any]) -> None:
    """Refuse to resume into ``out`` when its metrics belong to another model, benchmark or options."""
    if not isinstance(stored, Mapping):
        raise ConfigError(
            f"{out} already holds metrics, computed by an evaluation that did not record which model, "
            "benchmark and options they belong to; pass --overwrite (overwrite=True) to recompute them, "
            "or choose another --out"
        )
    what = {"model": "another model", "benchmark": "another benchmark", "options": "other evaluation options"}
    stored = {k: v for k, v in stored.items() if k in what}
    identity = {k: v for k, v in identity.items() if k in what}
    if stored == identity:
        return
    differs = [text for key, text in what.items() if stored.get(key) != identity.get(key)]
    raise ConfigError(
        f"{out} holds metrics of {' and '.join(differs)}; they cannot be resumed for this one. Pass "
        "--overwrite (overwrite=True) to recompute them here, or choose another --out"
    )


def finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is absent, not a number, NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class RunRecord:
    """A run's record: run.json's data and where it lives (None when kept in memory).

    The one reader of run data. Readers are tolerant (a key a run never wrote reads as empty), and
    a missing or non-finite number reads as ``None``. ``record["forget_quality"]`` is a metric's
    aggregate; ``record.per_item("forget/rouge")`` its values by item id.
    """

    data: dict[str, Any]
    path: Path | None = None

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        """Metric key -> stored entry (empty when the run holds none; a malformed entry reads as {})."""
        metrics = self.data.get("metrics")
        if not isinstance(metrics, Mapping):
            return {}
        return {str(k): (dict(v) if isinstance(v, Mapping) else {}) for k, v in metrics.items()}

    @property
    def skipped(self) -> dict[str, str]:
        """Metric key -> why the evaluation skipped it."""
        skipped = self.data.get("skipped")
        return {str(k): str(v) for k, v in skipped.items()} if isinstance(skipped, Mapping) else {}

    @property
    def all_generations(self) -> dict[str, dict[str, str]]:
        """Split -> item id -> generated text."""
        gens = self.data.get("generations")
        if not isinstance(gens, Mapping):
            return {}
        return {str(s): {str(k): str(v) for k, v in t.items()} for s, t in gens.items() if isinstance(t, Mapping)}

    def generations(self, split: str) -> dict[str, str]:
        """Item id -> the model's generated answer on ``split``."""
        return self.all_generations.get(split, {})

    @property
    def schema(self) -> int:
        version = self.data.get("schema", 1)
        return version if isinstance(version, int) else 1

    @property
    def kind(self) -> str:
        """``unlearn``, ``eval`` or ``prepare`` ("" when unknown)."""
        return str(self.data.get("kind") or "")

    @property
    def status(self) -> str:
        """``running``, ``completed``, ``stopped`` or ``diverged`` for an unlearning run ("" otherwise)."""
        return str(self.data.get("status") or "")

    @property
    def config(self) -> dict[str, Any]:
        config = self.data.get("config")
        return dict(config) if isinstance(config, Mapping) else {}

    @property
    def method(self) -> str:
        """The unlearning method's name ("" when the run did not record one)."""
        method = self.data.get("method") or self.config.get("method")
        if isinstance(method, Mapping):
            method = method.get("name", "")
        return str(method or "")

    @property
    def train(self) -> dict[str, Any]:
        train = self.data.get("train")
        return dict(train) if isinstance(train, Mapping) else {}

    @property
    def train_log(self) -> list[dict[str, Any]]:
        """The per-step training log (empty when the run was not trained here)."""
        log = self.train.get("log")
        return [dict(row) for row in log if isinstance(row, Mapping)] if isinstance(log, list) else []

    @property
    def stopped(self) -> str:
        """Why training stopped ("" when unknown)."""
        return str(self.train.get("stopped") or "")

    def entry(self, key: str) -> dict[str, Any]:
        """The stored entry of a metric; KeyError with "did you mean" (and why it was skipped) on a miss."""
        metrics = self.metrics
        if key not in metrics:
            hint = suggest(key, list(metrics))
            why = f" It was skipped: {self.skipped[key]}." if key in self.skipped else ""
            raise KeyError(f"no metric {key!r} in these results.{hint}{why}")
        return metrics[key]

    def aggregate(self, key: str) -> float | None:
        """A metric's aggregate, or None when the metric is missing or not a finite number."""
        return finite(self.metrics.get(key, {}).get("aggregate"))

    def values(self, key: str) -> list[float | None]:
        """A metric's per-item values (None where not finite); KeyError when the metric is missing."""
        return [finite(v) for v in self.entry(key).get("values") or []]

    def per_item(self, key: str) -> dict[str, float | None]:
        """A metric's per-item values keyed by item id (empty when missing)."""
        entry = self.metrics.get(key, {})
        ids, values = entry.get("item_ids") or [], entry.get("values") or []
        return {str(i): finite(v) for i, v in zip(ids, values)}

    def rows(self) -> list[tuple[str, float | None, str]]:
        """(key, aggregate, direction) for every metric, in storage order."""
        return [(k, self.aggregate(k), str(e.get("direction", ""))) for k, e in self.metrics.items()]

    def __getitem__(self, key: str) -> float | None:
        """A metric's aggregate (None when not finite); KeyError when the run has no such metric."""
        return finite(self.entry(key).get("aggregate"))

    def __contains__(self, key: object) -> bool:
        return key in self.metrics

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunRecord:
        """Read a run folder or run.json (upgraded to the current schema)."""
        return cls(load_run(path), run_file(path))


Results = RunRecord
"""What :func:`obliviate.evaluate` returns: the evaluated run's record."""
