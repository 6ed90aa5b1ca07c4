"""Reports: one self-contained HTML page (plus JSON and CSV) comparing one or many runs.

    from obliviate.reporting import make_report
    make_report(["prep/retain", "prep/target", "runs/npo"], "report.html")

Modules: :mod:`~obliviate.reporting.runs` reads runs and gives them roles (target, retain-only,
unlearned); :mod:`~obliviate.reporting.compare` builds the comparison (goals, closest model, missing
metrics, leaking forget items); :mod:`~obliviate.reporting.plots` draws inline SVG;
:mod:`~obliviate.reporting.html` renders the page; :mod:`~obliviate.reporting.export` writes the files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from obliviate.reporting.build import Report, build_report
from obliviate.reporting.export import output_paths, report_csv, report_json, write_report
from obliviate.reporting.html import render_html
from obliviate.reporting.runs import ReportRun, find_task, load_runs


def make_report(
    runs: Iterable[str | os.PathLike],
    out: str | os.PathLike = "report.html",
    *,
    target: str | os.PathLike | None = None,
    retain: str | os.PathLike | None = None,
    benchmark: str | os.PathLike | None = None,
    leak_metric: str = "forget/rouge",
    leak_threshold: float = 0.5,
    title: str | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Read runs and write ``out`` (HTML) with ``.json`` and ``.csv`` files next to it.

    Args:
        runs: run folders or run.json files.
        out: the HTML file to write.
        target: the run to mark as the target model (default: run.json's role or a
            folder named target).
        retain: the run to mark as the retain-only model (default: likewise, a folder named retain).
        benchmark: the prepared benchmark folder holding the questions (default:
            found next to the runs).
        leak_metric: the per-item metric that decides which forget items leak.
        leak_threshold: an answer leaks above this value (and above the retain-only model's).
        title: the page's title.
        overwrite: replace existing files that an earlier report did not write (never a run's or
            a model's own files).

    Returns:
        The written files by kind: ``html``, ``json``, ``csv``.
    """
    output_paths(out, overwrite=overwrite)  # a bad --out fails before any run is read
    loaded = load_runs(runs, target=target, retain=retain)
    report = build_report(
        loaded,
        benchmark=benchmark,
        leak_metric=leak_metric,
        leak_threshold=leak_threshold,
        title=title,
    )
    return write_report(report, out, overwrite=overwrite)


__all__ = [
    "Report",
    "ReportRun",
    "build_report",
    "find_task",
    "load_runs",
    "make_report",
    "render_html",
    "report_csv",
    "report_json",
    "write_report",
]
