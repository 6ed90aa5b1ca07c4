"""``obliviate unlearn``: run a training-based unlearning method on a model and save the result.

::

    obliviate unlearn --model prep/target --benchmark prep/benchmark --method npo --out runs/npo \\
        --method.beta 0.2 --train.lr 1e-4 --lora.enabled true --stop.forget_loss_above 5

writes ``runs/npo/model/`` (safetensors, atomically) and ``runs/npo/run.json`` (the resolved
configuration, package versions, seed, model and benchmark identity, timings, the training log and
why training stopped). Every option (method, train, lora, stop, benchmark) is validated before any
model loads, so a typo fails in a second with "did you mean". ``--config FILE.yaml`` holds any of
these options as a tree (``train: {lr: 1e-4}``); dotted flags win over it.

A run that diverges (non-finite loss or gradient) keeps the weights of its last good step, saves
them, records what happened in run.json and exits with :data:`obliviate.runs.EXIT_DIVERGED` (3).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser", "option_tree", "run"]


def add_parser(sub: Any, name: str = "unlearn", help_text: str = "run an unlearning method on a model") -> argparse.ArgumentParser:
    """Register the ``unlearn`` subcommand."""
    p = sub.add_parser(
        name,
        help=help_text,
        description=help_text + ". Dotted options: --method.<field> (see `obliviate ls methods`), "
        "--train.<field> (lr, epochs, max_steps, batch_size, ...), --lora.<field> (enabled, r, alpha, "
        "targets, init, save), --stop.<field> (forget_loss_above, retain_loss_below), "
        "--benchmark.<builder option> for a registered benchmark.",
    )
    p.add_argument("--model", required=True, help="a model folder (e.g. prep/target), a registered model or a hub id")
    p.add_argument("--benchmark", required=True, help="a prepared benchmark folder (prep/benchmark) or a registered benchmark")
    p.add_argument("--method", help="a registered method (obliviate ls methods); may also come from --config as method.name")
    p.add_argument("--out", required=True, help="the run folder: OUT/model and OUT/run.json")
    p.add_argument("--config", help="a YAML file of options (dotted flags win over it)")
    p.add_argument(
        "--resume", action="store_true",
        help="continue an interrupted run from OUT/checkpoints (written every --train.save_every steps; removed once the model is saved)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.add_argument("--prompt-format", dest="prompt_format", choices=("auto", "chat", "plain"), help="prompt format (default auto)")
    return p


def option_tree(config_file: str | None, extra: list[str]) -> dict[str, Any]:
    """The YAML preset (if any) with the dotted flags merged over it."""
    from obliviate.config import load_yaml, merge, parse_dotted_args

    tree = load_yaml(config_file) if config_file else {}
    return merge(tree, parse_dotted_args(extra))


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Run ``obliviate unlearn``; returns the exit code (0, or 3 when training diverged)."""
    from obliviate.runs import plan_unlearn, run_unlearn, summary_lines

    tree = option_tree(args.config, extra)
    if args.prompt_format:
        tree["prompt_format"] = args.prompt_format
    plan = plan_unlearn(args.model, args.benchmark, args.method, tree, out=args.out, resume=args.resume,
                        overwrite=args.overwrite, argv=sys.argv[1:])
    result = run_unlearn(plan)
    for line, is_error in summary_lines(result):
        print(line, file=sys.stderr if is_error else sys.stdout)
    return result.exit_code
