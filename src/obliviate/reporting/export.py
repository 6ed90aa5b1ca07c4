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
from obliviate.errors import ConfigError, OutputExistsError
from obliviate.files import write_atomic
from obliviate.reporting.build import Report


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
                r.name: [it.id for it in report.items if it.answers[r.name].leaks]
                for r in report.runs
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
        writer.writerow(
            [run.name, run.role, run.method, *("" if v is None else repr(v) for v in values)]
        )
    return buf.getvalue()


def output_paths(out: str | os.PathLike, *, overwrite: bool = False) -> tuple[Path, Path, Path]:
    """The HTML file and the JSON and CSV files written next to it, checked before anything is read.

    A file that already exists is replaced only when it is an earlier obliviate report's file, or
    with ``overwrite``; a run's or a model's own files (``run.json``, ``config.json``...) never.

    Raises:
        ConfigError: ``out`` is an existing folder or does not end in ``.html``.
        OutputExistsError: one of the three files exists and is not a report's.
    """
    html = Path(out).expanduser()
    if html.is_dir():
        raise ConfigError(
            f"--out {out} is a folder; name the HTML file, e.g. --out {html / 'report.html'}"
        )
    if html.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(
            f"--out {out} must end in .html (the .json and .csv files are written next to it)"
        )
    paths = (html, html.with_suffix(".json"), html.with_suffix(".csv"))
    owned = html.parent / "run.json", html.parent / "config.json", html.parent / "task.json"
    for path in paths:
        if not path.exists() or _is_report_file(path):
            continue
        if path.is_dir():
            raise OutputExistsError(f"{path} is a folder; choose another --out for the report")
        if any(o.is_file() for o in owned):
            raise OutputExistsError(
                f"{path} belongs to the run, model or benchmark folder {html.parent}, and the "
                "report would replace it; write the report elsewhere, e.g. --out "
                f"{html.parent.parent / html.name}"
            )
        if not overwrite:
            raise OutputExistsError(
                f"{path} exists and was not written by `obliviate report`; choose another --out, "
                "or pass --overwrite to replace it"
            )
    return paths


def _is_report_file(path: Path) -> bool:
    """Whether ``path`` is an HTML, JSON or CSV file that ``obliviate report`` wrote."""
    from obliviate.reporting.html import GENERATOR

    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except OSError:
        return False
    if path.suffix.lower() in (".html", ".htm"):
        return f'<meta name="generator" content="{GENERATOR}">' in head
    if path.suffix == ".csv":
        return head.startswith("model,role,method")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and {"obliviate_version", "runs", "comparison"} <= set(data)
    return False


def write_report(
    report: Report, out: str | os.PathLike, *, overwrite: bool = False
) -> dict[str, Path]:
    """Write the HTML page, the JSON and the CSV; returns their paths by kind."""
    from obliviate.reporting.html import render_html

    html, js, table = output_paths(out, overwrite=overwrite)
    page = render_html(report)
    data = json.dumps(report_json(report), indent=1, ensure_ascii=False, allow_nan=False)
    return {
    "html": write_atomic(html, page),
    "json": write_atomic(js, data + "\n"),
    "csv": write_atomic(table, report_csv(report)),
    }


__all__ = ["output_paths", "report_csv", "report_json", "write_atomic", "write_report"]
