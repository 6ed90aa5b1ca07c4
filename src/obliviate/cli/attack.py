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
    from obliviate.cli.request import add_request
    from obliviate.runs.attack_run import AttackRequest

    add_request(p, AttackRequest, required=("run",), exclude=("attacks", "options"))
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--attack", help="comma-separated attack names (relearn,quantize)")
    which.add_argument("--all", action="store_true", help="the standard battery")
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

    from obliviate.cli.request import request_from
    from obliviate.runs.attack_run import AttackRequest, plan_request, run_attack, summary_lines

    attacks = "all" if args.all else args.attack
    request = request_from(AttackRequest, args, attacks=attacks, options=parse_options(extra or []))
    plan = plan_request(request)
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
