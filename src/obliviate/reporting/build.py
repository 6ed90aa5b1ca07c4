"""Everything a report shows, gathered once from the runs: :class:`Report` and :func:`build_report`."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from obliviate.errors import ConfigError
from obliviate.reporting.compare import (
    ForgetItem,
    MetricRow,
    forget_items,
    metric_rows,
    missing_metrics,
    shown_value,
)
from obliviate.reporting.plots import PALETTE, ROLE_COLOURS, PlanePoint
from obliviate.reporting.runs import ReportRun, TaskLookup, find_task

FQ_KEY = "forget_quality"
MU_KEY = "model_utility"


@dataclass
class Report:
    """A report's content, ready to render as HTML, JSON or CSV.

    Attributes:
        runs: the models, target first, retain-only last.
        rows: one row per metric.
        missing: model name -> {missing metric key: why}.
        items: forget items with each model's answer, leaking items first.
        task: where the questions and true answers came from.
        leak_metric: the per-item metric that decides leaks (``forget/rouge``).
        leak_threshold: an answer leaks above this value (and above the retain-only model's).
        colours: model name -> its colour in every plot and table.
        title: the page's title.
        created: when the report was made (UTC, ISO 8601).
    """

    runs: list[ReportRun]
    rows: list[MetricRow]
    missing: dict[str, dict[str, str]]
    items: list[ForgetItem]
    task: TaskLookup
    leak_metric: str = "forget/rouge"
    leak_threshold: float = 0.5
    colours: dict[str, str] = field(default_factory=dict)
    title: str = "obliviate report"
    created: str = ""

    @property
    def retain(self) -> ReportRun | None:
        """The retain-only model (the goal), or None."""
        return next((r for r in self.runs if r.role == "retain"), None)

    @property
    def keys(self) -> list[str]:
        """Every metric key, in table order."""
        return [row.key for row in self.rows]

    def plane_points(self) -> tuple[list[PlanePoint], dict[str, str]]:
        """Models with both headline metrics as points; the others with what they lack.

        The retain-only model is drawn at forget quality 1: the KS test of its own truth ratios
        against themselves has statistic 0 and p-value 1 (:func:`~obliviate.reporting.compare.shown_value`).
        """
        points: list[PlanePoint] = []
        off: dict[str, str] = {}
        for run in self.runs:
            (fq, by_definition), mu = shown_value(run, FQ_KEY), run.aggregate(MU_KEY)
            note = "forget quality 1 by definition (compared with itself)" if by_definition else ""
            lacking = [k for k, v in ((FQ_KEY, fq), (MU_KEY, mu)) if v is None]
            if lacking:
                off[run.name] = " and ".join(lacking)
                continue
            if fq is not None and fq <= 0:
                note = "forget quality 0: drawn at the axis's left end"
            points.append(PlanePoint(run.name, run.role, float(fq), float(mu), self.colours[run.name], note))  # type: ignore[arg-type]
        return points, off

    def leak_counts(self) -> dict[str, tuple[int, int]]:
        """Model name -> (items that leak, items with a per-item score)."""
        out = {}
        for run in self.runs:
            scored = [it for it in self.items if it.answers[run.name].score is not None]
            out[run.name] = (sum(it.answers[run.name].leaks for it in scored), len(scored))
        return out


def assign_colours(runs: Sequence[ReportRun]) -> dict[str, str]:
    """Red for the target, green for the retain-only model, the palette for the rest."""
    colours, i = {}, 0
    for run in runs:
        if run.role in ROLE_COLOURS:
            colours[run.name] = ROLE_COLOURS[run.role]
        else:
            colours[run.name] = PALETTE[i % len(PALETTE)]
            i += 1
    return colours


def build_report(
    runs: Sequence[ReportRun],
    *,
    benchmark: str | os.PathLike | None = None,
    task: TaskLookup | None = None,
    leak_metric: str = "forget/rouge",
    leak_threshold: float = 0.5,
    title: str | None = None,
) -> Report:
    """Gather a report's content from loaded runs.

    Args:
        runs: the runs (:func:`obliviate.reporting.runs.load_runs`).
        benchmark: the prepared benchmark folder with the questions (default: found next to the runs).
        task: the questions and answers already read (overrides ``benchmark``).
        leak_metric: the per-item metric whose values decide which forget items leak.
        leak_threshold: a per-item value above this (and above the retain-only model's) leaks.
        title: the page's title (default: names the benchmark).

    Raises:
        ConfigError: no runs, or a threshold outside [0, 1].
    """
    if not runs:
        raise ConfigError("a report needs at least one run: pass run folders or run.json files")
    if not 0.0 <= leak_threshold <= 1.0:
        raise ConfigError(f"the leak threshold is a ROUGE-L recall in [0, 1], got {leak_threshold}; 0.5 is usual")
    runs = list(runs)
    rows = metric_rows(runs)
    lookup = task if task is not None else find_task(runs, benchmark)
    bench = next((_benchmark_name(r) for r in runs if _benchmark_name(r)), "")
    return Report(
        runs=runs,
        rows=rows,
        missing=missing_metrics(runs, [row.key for row in rows]),
        items=forget_items(runs, lookup, leak_metric, leak_threshold),
        task=lookup,
        leak_metric=leak_metric,
        leak_threshold=leak_threshold,
        colours=assign_colours(runs),
        title=title or (f"obliviate report — {bench}" if bench else "obliviate report"),
        created=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _benchmark_name(run: ReportRun) -> str:
    """The benchmark a run was evaluated on (from its eval record or its training record)."""
    return run.eval_info.benchmark or run.benchmark_info.name


__all__ = ["FQ_KEY", "MU_KEY", "Report", "assign_colours", "build_report"]
