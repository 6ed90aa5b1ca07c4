"""``obliviate report``: turn one or many runs into one self-contained HTML report.

    obliviate report RUN [RUN ...] [--out report.html] [--target RUN] [--retain RUN]
                     [--benchmark DIR/benchmark] [--leak-threshold 0.5] [--leak-metric forget/rouge]

RUN is a run folder or its run.json. The retain-only model (the goal of every metric) and the
target model are recognised by run.json's ``role`` key or by a folder named ``retain`` or
``target``; ``--retain`` and ``--target`` mark them explicitly (and add them when not listed).
Next to ``report.html`` come ``report.json`` (the runs combined) and ``report.csv`` (one row per
model, one column per metric).
"""

from __future__ import annotations

import argparse
from typing import Any

from obliviate.errors import ConfigError

DEFAULT_HELP = "turn runs into one self-contained HTML report"


def add_parser(sub: Any, name: str = "report", help_text: str = DEFAULT_HELP) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to an argparse subparsers object."""
    p = sub.add_parser(
        name,
        help=help_text,
        description=(
            f"{help_text}: the forget-quality / model-utility plane, every metric against the "
            "retain-only model, training curves, the forget set item by item, and provenance."
        ),
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="run folders or run.json files")
    p.add_argument("--out", default="report.html", help="the HTML file; .json and .csv go next to it (default: report.html)")
    p.add_argument("--target", metavar="RUN", help="the run of the target model (before unlearning)")
    p.add_argument("--retain", metavar="RUN", help="the run of the retain-only model (the goal)")
    p.add_argument("--benchmark", metavar="DIR", help="the prepared benchmark folder with the questions (default: found next to the runs)")
    p.add_argument("--leak-metric", default="forget/rouge", help="per-item metric that flags leaking forget items (default: forget/rouge)")
    p.add_argument("--leak-threshold", type=float, default=0.5, help="an answer leaks above this value and above the retain-only model's (default: 0.5)")
    p.add_argument("--title", help="the page's title (default: names the benchmark)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files that an earlier report did not write")
    return p


def run(args: argparse.Namespace, extra: list[str] | None = None) -> int:
    """Run ``obliviate report``; returns the exit code (errors are raised as ObliviateError)."""
    from obliviate.reporting import make_report

    if extra:
        raise ConfigError(f"`obliviate report` takes no option {extra[0]}; see `obliviate report --help`")
    if not args.runs and not args.target and not args.retain:
        raise ConfigError("name at least one run: `obliviate report runs/* --out report.html`")
    written = make_report(
        args.runs,
        args.out,
        target=args.target,
        retain=args.retain,
        benchmark=args.benchmark,
        leak_metric=args.leak_metric,
        leak_threshold=args.leak_threshold,
        title=args.title,
        overwrite=args.overwrite,
    )
    for kind, path in written.items():
        print(f"wrote {kind:4s} {path}")
    return 0


__all__ = ["add_parser", "run"]
