"""Write a report: ``NAME.html`` with ``NAME.json`` (the runs combined) and ``NAME.csv`` beside it.

``NAME.csv`` is the comparison table: one row per model (model, role, method), one column per
metric aggregate, empty where a model lacks the metric. ``NAME.json`` holds every run's run.json
under its name and role, with the comparison (goals, closest models, missing metrics, leaking
items). Each file is written to a temporary file first and moved into place with ``os.replace``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from obliviate import __version__
from obliviate.errors import ConfigError
from obliviate.report.build import Report
from obliviate.results import write_atomic


def report_json(report: Report) -> dict[str, Any]:
    """The runs' results combined, with the comparison the page shows."""
    return {
        "obliviate_version": __version__,
        "created": report.created,
        "title": report.title,
        "benchmark_folder": report.task.source or None,
        "leak": {"metric": report.leak_metric, "threshold": report.leak_threshold},
        "runs": [
            {"name": r.name, "role": r.role, "path": str(r.path) if r.path else None, "run": r.data}
            for r in report.runs
        ],
        "comparison": {
            "metrics": [
                {
                    "key": row.key,
                    "direction": row.direction,
                    "description": row.description,
                    "goal": row.goal,
                    "closest": row.closest,
                    "values": row.values,
                }
                for row in report.rows
            ],
            "missing": report.missing,
            "leaking_items": {
                r.name: [it.id for it in report.items if it.answers[r.name].leaks] for r in report.runs
            },
        },
    }


def report_csv(report: Report) -> str:
    """The comparison table as CSV: one row per model, one column per metric aggregate."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", "role", "method", *report.keys])
    for run in report.runs:
        values = [run.aggregate(k) for k in report.keys]
        writer.writerow([run.name, run.role, run.method, *("" if v is None else repr(v) for v in values)])
    return buf.getvalue()


def output_paths(out: str | os.PathLike) -> tuple[Path, Path, Path]:
    """The HTML file and the JSON and CSV files written next to it.

    Raises:
        ConfigError: ``out`` is an existing folder or does not end in ``.html``.
    """
    html = Path(out).expanduser()
    if html.is_dir():
        raise ConfigError(f"--out {out} is a folder; name the HTML file, e.g. --out {html / 'report.html'}")
    if html.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--out {out} must end in .html (the .json and .csv files are written next to it)")
    return html, html.with_suffix(".json"), html.with_suffix(".csv")


def write_report(report: Report, out: str | os.PathLike) -> dict[str, Path]:
    """Write the HTML page, the JSON and the CSV; returns their paths by kind."""
    from obliviate.report.html import render_html

    html, js, table = output_paths(out)
    page = render_html(report)
    data = json.dumps(report_json(report), indent=1, ensure_ascii=False, allow_nan=False)
    return {
    "html": write_atomic(html, page),
    "json": write_atomic(js, data + "\n"),
    "csv": write_atomic(table, report_csv(report)),
    }


__all__ = ["output_paths", "report_csv", "report_json", "write_atomic", "write_report"]
