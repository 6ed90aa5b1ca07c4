"""Full `fictional` evaluation of a prepared SmolLM2 target: wall time and where it goes.

Usage: python bench/eval_target.py PREP_DIR [--profile full|fast]
(PREP_DIR is an `obliviate prepare` output.) Evaluates the retain-only model first (the
reference), then the target, and prints each one's wall time with the shares spent in
generation, in scoring (teacher-forced forward passes) and in computing the metrics.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    from obliviate.data.task import UnlearningTask
    from obliviate.evaluation import run_metrics
    from obliviate.metrics.base import EvalOptions
    from obliviate.models.io import load_model
    from obliviate.runs.demo import PROFILES

    ap = argparse.ArgumentParser()
    ap.add_argument("prep", type=Path)
    ap.add_argument("--profile", default="full", choices=tuple(PROFILES))
    args = ap.parse_args()
    task = UnlearningTask.load(args.prep / "benchmark")
    options = EvalOptions(**PROFILES[args.profile])
    with tempfile.TemporaryDirectory() as tmp:
        for role in ("retain", "target"):
            t0 = time.perf_counter()
            res = run_metrics(
                load_model(args.prep / role), task, out=Path(tmp) / role, options=options,
                reference=None if role == "retain" else Path(tmp) / "retain",
            )
            wall = time.perf_counter() - t0
            seconds = res.data.get("eval", {}).get("seconds", {})
            gen = sum(v for k, v in seconds.items() if k.startswith("generate"))
            score = seconds.get("score", 0.0)
            compute = seconds.get("compute", 0.0)
            print(
                f"{role}: {wall:.0f} s wall, {len(res.metrics)} metrics | generation {gen / wall:.0%}, "
                f"scoring {score / wall:.0%}, metric computation {compute / wall:.0%}, "
                f"loading and the rest {(wall - gen - score - compute) / wall:.0%}"
            )


if __name__ == "__main__":
    main()
