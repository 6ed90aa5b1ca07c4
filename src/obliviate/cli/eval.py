"""``obliviate eval``: evaluate a model on a benchmark's metric plan and print a summary.

    obliviate eval --model M --benchmark B --out RUN [--reference RETAIN_RUN] [--metrics a,b]
                   [--plan P] [--overwrite] [--eval.max_new_tokens N ...]

``B`` is a prepared benchmark folder (``obliviate prepare`` writes ``DIR/benchmark``) or a
registered benchmark name built with its defaults. ``--reference`` is the run folder (or
run.json) of the retain-only model evaluated earlier; the reference model is never reloaded.
Everything that can be checked (benchmark, plan, metric names, reference, options, model spec)
is checked before the model loads.
"""

from __future__ import annotations

import argparse
from typing import Any

from obliviate.errors import ConfigError

DEFAULT_HELP = "evaluate a model on a benchmark's metric plan"


def add_parser(sub: Any, name: str = "eval", help_text: str = DEFAULT_HELP) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to an argparse subparsers object."""
    from obliviate.config import field_help
    from obliviate.metrics.base import EvalOptions

    options = ", ".join(f"{k} ({v})" for k, v in field_help(EvalOptions).items())
    p = sub.add_parser(
        name,
        help=help_text,
        description=f"{help_text}. Dotted options --eval.<field>: {options}. A registered benchmark takes its "
        "builder options as --benchmark.<option> (n_people, seed, ...).",
    )
    p.add_argument("--model", required=True, help="a registered model, a local model folder or a hub id")
    p.add_argument("--benchmark", required=True, help="a prepared benchmark folder or a registered benchmark name")
    p.add_argument("--out", required=True, help="the run folder; results go to OUT/run.json")
    p.add_argument("--reference", help="run folder or run.json of the retain-only model, evaluated earlier")
    p.add_argument("--metrics", help="comma-separated metric names (rouge) or keys (forget/rouge); default: the plan")
    p.add_argument("--plan", help="fictional, tofu or muse (default: the benchmark's own plan)")
    p.add_argument("--overwrite", action="store_true", help="recompute metrics already in OUT/run.json")
    return p


def parse_options(extra: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``--eval.<field>`` and ``--benchmark.<option>`` dotted flags; any other flag is an error."""
    from obliviate.config import parse_dotted_args

    tree = parse_dotted_args(list(extra or []))
    unknown = [k for k in tree if k not in ("eval", "benchmark")]
    if unknown:
        raise ConfigError(
            f"`obliviate eval` takes only --eval.<option> and --benchmark.<option> dotted flags, got --{unknown[0]}.*"
        )
    for group in ("eval", "benchmark"):
        if not isinstance(tree.get(group, {}), dict):
            raise ConfigError(f"--{group} is a group of options; set a field, e.g. --eval.max_new_tokens 64")
    return tree.get("eval", {}), tree.get("benchmark", {})


def summary_table(results: Any, title: str) -> Any:
    """A rich table of every metric's aggregate, direction and item count."""
    from rich.table import Table

    from obliviate.metrics.base import DIRECTIONS

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("items", justify="right")
    table.add_column("best")
    for key, value, direction in results.rows():
        n = len(results.metrics[key].get("values", []))
        best = DIRECTIONS.get(direction, direction).split(":")[0]
        table.add_row(key, "-" if value is None else f"{value:.4g}", str(n) if n else "", best)
    for key, reason in results.skipped.items():
        table.add_row(f"[dim]{key}[/dim]", "[dim]skipped[/dim]", "", f"[dim]{reason}[/dim]")
    return table


def run(args: argparse.Namespace, extra: list[str] | None = None) -> int:
    """Run ``obliviate eval``; returns the exit code (errors are raised as ObliviateError)."""
    from rich.console import Console

    from obliviate.runs import evaluate
    from obliviate.scoring.shard import is_first_process

    options, benchmark_options = parse_options(extra or [])
    results = evaluate(args.model, args.benchmark, args.reference, args.out, plan=args.plan, metrics=args.metrics,
                       options=options, benchmark_options=benchmark_options, overwrite=args.overwrite)
    if is_first_process():  # under accelerate launch, the first process reports
        console = Console()
        console.print(summary_table(results, f"{args.model} on {results.data.get('eval', {}).get('benchmark', args.benchmark)}"))
        console.print(f"wrote {results.path}")
    return 0


__all__ = ["add_parser", "parse_options", "run", "summary_table"]
