"""``obliviate demo``: prepare, unlearn with several methods, evaluate, compare, report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

# Columns of the terminal comparison: (metric key, header, number format).
COLUMNS = (
    ("forget_quality", "FQ ↑", "{:.2e}"),
    ("model_utility", "MU ↑", "{:.3f}"),
    ("forget/rouge", "forget ROUGE", "{:.3f}"),
    ("retain/rouge", "retain ROUGE", "{:.3f}"),
    ("forget/truth_ratio", "forget TR", "{:.3f}"),
    ("forget/mia_min_k", "MIA AUC", "{:.3f}"),
    ("privleak", "privleak", "{:+.1f}"),
)
LEGEND = (
    "FQ: forget quality, KS-test p-value of forget truth ratios against the retain-only model's (higher is "
    "closer); MU: model utility (TOFU); ROUGE: ROUGE-L recall of greedy answers; TR: truth ratio; MIA AUC: "
    "Min-K% membership inference, forget vs never-seen people (0.5 = cannot tell); privleak: MUSE, 0 is ideal."
)


def add_parser(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    from obliviate.runs.demo import DEFAULT_METHODS

    p = sub.add_parser(name, help=help_text, description=help_text + ". Options of a method are dotted: --npo.beta 0.2.")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="comma-separated methods (obliviate ls methods)")
    p.add_argument("--forget", default="forget10", choices=("forget01", "forget05", "forget10"), help="forget split")
    p.add_argument("--profile", default="fast", choices=("fast", "full"), help="fast: utility subsets; full: every item")
    p.add_argument("--model", default="smollm2-135m", help="the model to prepare and unlearn")
    p.add_argument("--out", default="obliviate-demo", help="where the runs and report.html go")
    return p


def print_table(runs_dir: Path, names: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from obliviate.record import read_run

    table = Table(title="Unlearning on the fictional benchmark (goal: the retain-only model's values)")
    table.add_column("model", no_wrap=True)
    for _, header, _ in COLUMNS:
        table.add_column(header, justify="right", no_wrap=True)
    for name in names:
        metrics = read_run(runs_dir / name, missing_ok=True).get("metrics", {})
        row = [name]
        for key, _, fmt in COLUMNS:
            agg = metrics.get(key, {}).get("aggregate")
            row.append("-" if agg is None else fmt.format(agg))
        table.add_row(*row, style="bold" if name == "retain" else None)
    console = Console(width=max(Console().width, 100))
    console.print(table)
    console.print(LEGEND, style="dim")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from rich.console import Console

    from obliviate.config import parse_dotted_args
    from obliviate.runs.demo import DemoConfig, run_demo

    console = Console()
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    cfg = DemoConfig(
        methods=methods, forget=args.forget, profile=args.profile, model=args.model,
        method_options=parse_dotted_args(extra),
    )
    result = run_demo(cfg, Path(args.out), say=console.print)
    print_table(result["runs"], ["target", "retain", *methods])
    t = result["timings"]
    console.print(f"done in {t['total']:.0f} s; report: [bold]{result['report']}[/]")
    return 0
