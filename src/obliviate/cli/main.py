"""``obliviate``: entry point and subcommand dispatch.

Each subcommand module exposes ``add_parser(subparsers)`` and ``run(args, extra) -> int``.
``extra`` holds the dotted options (``--train.lr 1e-4``), validated by the subcommand before any
model loads. Modules are imported only when their subcommand runs, so ``obliviate --help`` and
``obliviate ls`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import logging
import os
import sys

from obliviate import __version__
from obliviate.errors import ObliviateError

SUBCOMMANDS = {
    "demo": ("obliviate.cli.demo", "run the embedded default end to end and write a report"),
    "prepare": ("obliviate.cli.prepare", "build a benchmark, fine-tune the target and the retain-only oracle"),
    "unlearn": ("obliviate.cli.unlearn", "run an unlearning method on a model"),
    "eval": ("obliviate.cli.eval", "evaluate a model on a benchmark's metric plan"),
    "attack": ("obliviate.cli.attack", "attack a run's model: does the forgetting hold?"),
    "protocol": ("obliviate.cli.protocol", "unlearn requests in a row (sequential) or growing forget sets (scale)"),
    "report": ("obliviate.cli.report", "turn runs into one self-contained HTML report"),
    "ls": ("obliviate.cli.ls", "list models, benchmarks, methods, metrics or attacks"),
}


def _available() -> dict[str, tuple[str, str]]:
    return {k: v for k, v in SUBCOMMANDS.items() if importlib.util.find_spec(v[0]) is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obliviate",
        description="Make a language model forget, prove it is gone, and measure what it cost.",
        epilog="Options of a method, the training loop or LoRA are dotted: --method.beta 0.2 --train.lr 1e-4",
    )
    parser.add_argument("--version", action="version", version=f"obliviate {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in _available().items():
        mod = importlib.import_module(module)
        n_params = len(inspect.signature(mod.add_parser).parameters)
        p = mod.add_parser(sub, name, help_text) if n_params >= 3 else mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        n_params = len(inspect.signature(args._run).parameters)
        return int((args._run(args, extra) if n_params >= 2 else args._run(args)) or 0)
    except ObliviateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command with --resume to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
