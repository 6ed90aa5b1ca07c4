"""``obliviate protocol``: unlearning requests one after another, or forget sets of growing size.

::

    obliviate protocol sequential --model prep/target --benchmark prep/benchmark --method npo \\
        --requests 3 --reference runs/retain --out runs/npo-seq [--train.lr 1e-4 --eval.max_items 20]
    obliviate protocol scale --model prep/target --benchmark prep/benchmark --method npo \\
        --sizes 0.25,0.5,1.0 --reference runs/retain --out runs/npo-scale

``sequential`` is MUSE's sustainability protocol (request i starts from request i-1's model),
``scale`` its scalability protocol (each forget set from the original model). ``--requests`` and
``--sizes`` may name the benchmark's own splits (MUSE: ``sust_forget_1,...`` and
``scal_forget_1,...``). Each step is a run folder ``OUT/<step>/`` evaluated on the whole
benchmark; ``OUT/protocol.json`` lists them. The same call in Python is ``ob.sequential(...)`` or
``ob.scale(...)``.
"""

from __future__ import annotations

import argparse
from typing import Any

from obliviate.errors import ConfigError

DEFAULT_HELP = "unlearn several requests in a row (sequential) or forget sets of growing size (scale)"


def add_parser(sub: Any, name: str = "protocol", help_text: str = DEFAULT_HELP) -> argparse.ArgumentParser:
    """Register the ``protocol`` subcommand."""
    p = sub.add_parser(
        name,
        help=help_text,
        description=help_text + ". Unlearning options are those of `obliviate unlearn` (--method.<field>, "
        "--train.<field>, --lora.<field>, --stop.<field>); --eval.<field> sets the evaluation after each step.",
    )
    p.add_argument("kind", choices=("sequential", "scale"), help="sequential (MUSE sustainability) or scale (MUSE scalability)")
    p.add_argument("--model", required=True, help="the model to start from (e.g. prep/target)")
    p.add_argument("--benchmark", required=True, help="a prepared benchmark folder or a registered benchmark")
    p.add_argument("--method", help="a registered method (obliviate ls methods)")
    p.add_argument("--out", required=True, help="the protocol folder: OUT/<step>/ and OUT/protocol.json")
    p.add_argument("--requests", help="sequential only: the number of requests (default 3), or comma-separated split names")
    p.add_argument("--sizes", help="scale only: subjects (1,2,4), fractions (default 0.25,0.5,1.0) or split names")
    p.add_argument("--reference", help="the retain-only model's run, for forget quality")
    p.add_argument("--metrics", help="only these metrics (comma-separated; default: the benchmark's plan)")
    p.add_argument("--config", help="a YAML file of unlearning options (dotted flags win over it)")
    p.add_argument("--seed", type=int, default=0, help="deals the forget subjects into requests or sizes")
    p.add_argument("--resume", action="store_true", help="continue an interrupted protocol in OUT (same options only)")
    p.add_argument("--overwrite", action="store_true", help="replace the protocol in OUT")
    p.add_argument("--prompt-format", dest="prompt_format", choices=("auto", "chat", "plain"), help="prompt format (default auto)")
    return p


def parse_steps(text: str, kind: str) -> int | list[Any]:
    """``--requests 3`` / ``--sizes 1,2,4`` / ``0.25,0.5`` / ``sust_forget_1,sust_forget_2``."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"--{'requests' if kind == 'sequential' else 'sizes'} is empty")

    def number(p: str) -> int | float | str:
        for cast in (int, float):
            try:
                return cast(p)
            except ValueError:
                pass
        return p

    values = [number(p) for p in parts]
    if kind == "sequential":
        if len(values) == 1 and isinstance(values[0], int):
            return values[0]
        if not all(isinstance(v, str) for v in values):
            raise ConfigError(f"--requests is a number of requests (3) or split names, not {text!r}")
    elif any(isinstance(v, str) for v in values) and not all(isinstance(v, str) for v in values):
        raise ConfigError(f"--sizes mixes numbers and split names: {text!r}")
    return values


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Run ``obliviate protocol``; returns the exit code."""
    from obliviate.cli.unlearn import option_tree
    from obliviate.runs.protocols import scale, sequential

    if args.kind == "sequential" and args.sizes is not None:
        raise ConfigError("--sizes applies to `protocol scale`; `protocol sequential` takes --requests (a number or split names)")
    if args.kind == "scale" and args.requests is not None:
        raise ConfigError("--requests applies to `protocol sequential`; `protocol scale` takes --sizes (e.g. 0.25,0.5,1.0)")
    tree = option_tree(args.config, extra)
    eval_options = tree.pop("eval", None) or {}
    if not isinstance(eval_options, dict):
        raise ConfigError("eval is a group of options; set a field, e.g. --eval.max_items 20")
    if args.prompt_format:
        tree["prompt_format"] = args.prompt_format
    common = {"options": tree, "reference": args.reference, "eval": eval_options, "metrics": args.metrics,
              "seed": args.seed, "out": args.out, "resume": args.resume, "overwrite": args.overwrite}
    if args.kind == "sequential":
        proto = sequential(args.model, args.benchmark, args.method, requests=parse_steps(args.requests or "3", "sequential"), **common)
    else:
        proto = scale(args.model, args.benchmark, args.method, sizes=parse_steps(args.sizes or "0.25,0.5,1.0", "scale"), **common)  # type: ignore[arg-type]
    for line in table_lines(proto.table()):
        print(line)
    print(f"wrote {proto.out}/protocol.json")
    return 0


HEADLINE = ("forget_quality", "model_utility", "forget/rouge", "retain/rouge", "privleak")


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Each step's size and headline aggregates, one line a step."""
    lines = []
    for row in rows:
        aggs = row.get("aggregates", {})
        keys = [k for k in HEADLINE if k in aggs] or list(aggs)[:5]
        shown = "  ".join(f"{k} {aggs[k]:.4g}" if isinstance(aggs[k], float) else f"{k} -" for k in keys)
        lines.append(f"{row['name']:<12} {row['items']:>5} items  {shown}")
    return lines
