"""``obliviate attack``: does the forgetting hold? Attack a run and store the results in it.

    obliviate attack --run RUN --attack relearn[,quantize,...] [--relearn.steps 50 ...]
    obliviate attack --run RUN --all [--reference RETAIN_RUN] [--reference-model prep/retain]

Each attack is applied to the run's unlearned model and to the retain-only model alike; the run's
per-item forget metrics are evaluated again on both and stored in ``RUN/run.json`` under
``attacks``, with each forget item's verdict (removed, suppressed, kept) under ``attack_verdict``.
``obliviate report RUN`` shows them. Every option, the run, its benchmark and both models are
checked before any model loads. The same call in Python is ``ob.attack(RUN, "relearn")``.
"""

from __future__ import annotations

import argparse
from typing import Any

from obliviate.errors import ConfigError

DEFAULT_HELP = "attack a run's model (relearning, quantization, prompts, probes): does the forgetting hold?"


def add_parser(sub: Any, name: str = "attack", help_text: str = DEFAULT_HELP) -> argparse.ArgumentParser:
    """Add the ``attack`` subcommand to an argparse subparsers object."""
    from obliviate.attacks import ATTACKS, BATTERY

    battery = ", ".join(n + (f" ({', '.join(f'{k}={v}' for k, v in o.items())})" if o else "") for n, o in BATTERY)
    p = sub.add_parser(
        name,
        help=help_text,
        description=f"{help_text} Attacks: {', '.join(ATTACKS.names())} (obliviate ls attacks). "
        f"--all runs the standard battery: {battery}. An attack's options are dotted: --relearn.steps 50.",
    )
    p.add_argument("--run", required=True, help="the run folder (evaluated; its model in RUN/model)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--attack", help="comma-separated attack names (relearn,quantize)")
    which.add_argument("--all", action="store_true", help="the standard battery")
    p.add_argument("--reference", help="the retain-only model's run (default: the run's evaluation reference)")
    p.add_argument("--reference-model", help="the retain-only model's folder (default: the model that run evaluated)")
    p.add_argument("--model", help="the model to attack (default: RUN/model)")
    p.add_argument("--benchmark", help="the benchmark folder (default: the one the run records)")
    p.add_argument("--verdict-metric", help="per-item score of the verdict (default: forget/prob)")
    p.add_argument("--quantile", type=float, default=0.95, help="the retain-only model's quantile an item must exceed to show a fact")
    p.add_argument("--seed", type=int, default=0, help="seeds every attack")
    p.add_argument("--overwrite", action="store_true", help="replace attacks stored with other options")
    return p


def parse_options(extra: list[str]) -> dict[str, dict[str, Any]]:
    """The ``--ATTACK.option value`` flags, by attack name."""
    from obliviate.attacks import ATTACKS
    from obliviate.config import parse_dotted_args

    tree = parse_dotted_args(list(extra or []))
    for key, value in tree.items():
        ATTACKS.canonical(key)  # an unknown attack: "did you mean"
        if not isinstance(value, dict):
            raise ConfigError(f"--{key} is a group of options; set a field, e.g. --relearn.steps 50")
    return tree


def run(args: argparse.Namespace, extra: list[str] | None = None) -> int:
    """Run ``obliviate attack``; returns the exit code (errors are raised as ObliviateError)."""
    from rich.console import Console

    from obliviate.runs.attack_run import plan_attack, run_attack, summary_lines

    options = parse_options(extra or [])
    plan = plan_attack(args.run, "all" if args.all else args.attack, options, reference=args.reference,
                       reference_model=args.reference_model, model=args.model, benchmark=args.benchmark,
                       verdict_metric=args.verdict_metric, quantile=args.quantile, seed=args.seed,
                       overwrite=args.overwrite)
    console = Console(stderr=True)
    if plan.reference_model is None:
        console.print("no retain-only model: the attacks run on the unlearned model only, and there is no verdict")
    record = run_attack(plan, progress=True, say=console.print)
    out = Console()
    for line in summary_lines(record, plan.keys):
        out.print(line)
    out.print(f"wrote {record.path}")
    return 0


__all__ = ["add_parser", "parse_options", "run"]
