"""``obliviate prepare``: benchmark, target model and retain-only oracle in one folder."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_MODEL = "smollm2-135m"


def add_parser(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help=help_text,
        description=help_text + ". Dotted options: --train.<field> (lr, epochs, batch_size, ...), "
        "--benchmark.<builder option> (n_people, forget, seed, ...), --prompt_format.",
    )
    p.add_argument("--benchmark", default="fictional", help="a registered benchmark (obliviate ls benchmarks)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="a registered model, a local folder or a hub id")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--config", help="a YAML file of options (dotted flags win over it)")
    p.add_argument("--resume", action="store_true", help="finish an interrupted prepare in --out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return p


def print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    counts = {split: v.get("items") for split, v in next(iter(summary["models"].values())).items()}
    read = ", ".join(f"{n} {split}" for split, n in counts.items() if n)
    table = Table(title="What each model knows (answer NLL per token, ROUGE-L recall" + (f"; {read} items)" if read else ")"))
    table.add_column("model")
    for split in ("forget", "retain"):
        table.add_column(f"{split} NLL", justify="right")
        table.add_column(f"{split} ROUGE-L", justify="right")
    for role, splits in summary["models"].items():
        row = [role]
        for split in ("forget", "retain"):
            row += [f"{splits[split]['nll']:.3f}", f"{splits[split]['rouge_l_recall']:.3f}"]
        table.add_row(*row)
    Console().print(table)
    t = summary["timings"]
    print(f"prepared in {t['total']:.0f} s")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from obliviate.config import parse_dotted_args
    from obliviate.runs.prepare import prepare, prepare_config

    # model defaults < YAML file < dotted flags; validated before anything loads
    config = prepare_config(args.model, args.benchmark, parse_dotted_args(extra), args.config)
    summary = prepare(args.benchmark, args.model, args.out, config, resume=args.resume, overwrite=args.overwrite)
    print_summary(summary)
    print(f"wrote {args.out}/benchmark, {args.out}/target, {args.out}/retain")
    return 0
