"""The reader of run data: :class:`RunRecord`, with a typed property for every section."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obliviate.record.schema import (
    AttackEntry,
    BenchmarkInfo,
    EvalInfo,
    Failure,
    ModelInfo,
    TrainInfo,
    Verdict,
    malformed,
    section,
)
from obliviate.record.store import finite, read_run, run_file
from obliviate.registry import suggest


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
        return {
            str(s): {str(k): str(v) for k, v in t.items()}
            for s, t in gens.items()
            if isinstance(t, Mapping)
        }

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
    def identity(self) -> dict[str, Any]:
        """What a resume must match (written by the run kinds of :mod:`obliviate.runs.base`)."""
        return self.data_of("identity")

    @property
    def role(self) -> str:
        """The report's role the run declares (target, retain, ...; "" when none)."""
        role = self.data.get("role")
        return role if isinstance(role, str) else ""

    def malformed(self) -> list[str]:
        """The sections whose shape does not follow the schema (a damaged or foreign file)."""
        return malformed(self.data)

    @property
    def seed(self) -> int | None:
        """The run's seed (None when it recorded none)."""
        seed = self.data.get("seed")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None

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
    def eval_info(self) -> EvalInfo:
        """The ``eval`` section: benchmark, plan, options, reference, model, identity, timings."""
        return section(EvalInfo, self.data.get("eval"))

    @property
    def eval_identity(self) -> dict[str, Any]:
        """What the stored metrics belong to: model fingerprint, benchmark content, options."""
        return self.eval_info.identity

    @property
    def model_info(self) -> ModelInfo:
        """The ``model`` section of an unlearning run (where it started, where the result went)."""
        return section(ModelInfo, self.data.get("model"))

    @property
    def benchmark_info(self) -> BenchmarkInfo:
        """The ``benchmark`` section of an unlearning run (name, version, content fingerprint)."""
        return section(BenchmarkInfo, self.data.get("benchmark"))

    @property
    def train_info(self) -> TrainInfo:
        """The ``train`` section, typed."""
        return section(TrainInfo, self.data.get("train"))

    @property
    def attacks(self) -> dict[str, AttackEntry]:
        """Attack label -> stored attack (options, identity, the attacked scores of both models)."""
        found = self.data.get("attacks")
        if not isinstance(found, Mapping):
            return {}
        return {str(k): section(AttackEntry, v) for k, v in found.items() if isinstance(v, Mapping)}

    @property
    def attack_verdict(self) -> Verdict | None:
        """The per-item verdict over the stored attacks (None before any attack with a reference)."""
        found = self.data.get("attack_verdict")
        return section(Verdict, found) if isinstance(found, Mapping) else None

    @property
    def failure(self) -> Failure | None:
        """Why a ``failed`` or ``interrupted`` run ended (error type and message), else None."""
        found = self.data.get("failure")
        return section(Failure, found) if isinstance(found, Mapping) else None

    @property
    def finished(self) -> bool:
        """Whether the run ended with a result (an evaluation-only record has no status and counts)."""
        return self.status in ("", "completed", "stopped", "diverged")

    @property
    def train(self) -> dict[str, Any]:
        train = self.data.get("train")
        return dict(train) if isinstance(train, Mapping) else {}

    @property
    def train_log(self) -> list[dict[str, Any]]:
        """The per-step training log (empty when the run was not trained here)."""
        log = self.train.get("log")
        return (
            [dict(row) for row in log if isinstance(row, Mapping)] if isinstance(log, list) else []
        )

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

    def item_ids(self, key: str) -> list[str]:
        """A metric's item ids (empty when missing or not per-item)."""
        ids = self.metrics.get(key, {}).get("item_ids")
        return [str(i) for i in ids] if isinstance(ids, list) else []

    def data_of(self, name: str) -> dict[str, Any]:
        """A top-level section as a plain mapping (empty when absent or not an object), for writers that
        extend it: ``{**record.data_of("attacks"), label: entry}``."""
        found = self.data.get(name)
        return dict(found) if isinstance(found, Mapping) else {}

    def per_item(self, key: str) -> dict[str, float | None]:
        """A metric's per-item values keyed by item id (empty when missing)."""
        entry = self.metrics.get(key, {})
        ids, values = entry.get("item_ids") or [], entry.get("values") or []
        return {str(i): finite(v) for i, v in zip(ids, values)}

    def rows(self) -> list[tuple[str, float | None, str]]:
        """(key, aggregate, direction) for every metric, in storage order."""
        return [
            (k, self.aggregate(k), str(e.get("direction", ""))) for k, e in self.metrics.items()
        ]

    def __getitem__(self, key: str) -> float | None:
        """A metric's aggregate (None when not finite); KeyError when the run has no such metric."""
        return finite(self.entry(key).get("aggregate"))

    def __contains__(self, key: object) -> bool:
        return key in self.metrics

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunRecord:
        """Read a run folder or run.json (upgraded to the current schema)."""
        return cls(read_run(path), run_file(path))


Results = RunRecord
"""What :func:`obliviate.evaluate` returns: the evaluated run's record."""
