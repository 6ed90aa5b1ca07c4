"""Two obliviate processes on one machine: how much slower each runs than alone, per thread setting.

Each worker is a separate Python process that imports obliviate, loads the ``tiny`` model (or ``--model``) and
runs a fixed number of fine-tuning steps (answer NLL, forward + backward + AdamW, batches of 8
fictional forget items): the inner loop of ``prepare`` and ``unlearn``. For each thread setting the
worker runs once alone, then ``--processes`` workers start together; the figure is each concurrent
worker's wall time over the solo time of the same setting (goal: at most about 2.5x for two).

Each step calls ``obliviate.runtime.share_threads`` as obliviate's training loop does. Settings
compared (environment of each worker):

- ``obliviate default``: nothing set: the automatic fair share (each of n working processes takes
  1/n of the threads);
- ``+ OBLIVIATE_THREADS=shared``: the share and OpenMP's passive wait policy;
- ``torch default``: ``OBLIVIATE_THREADS=torch``, no share: torch's own threads in every process;
- ``OMP_WAIT_POLICY=ACTIVE``: no share, OpenMP threads spin while they wait (the worst case);
- ``1 thread each``: OMP_NUM_THREADS=1, the manual fix.

Usage: ``python bench/shared_cores.py [--steps 40] [--processes 2] [--model tiny|smollm2-135m]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

WORKER = """
import sys, time
t0 = time.perf_counter()
import obliviate  # applies obliviate's thread settings unless the environment sets them
import torch
from obliviate.benchmarks.fictional import build_fictional
from obliviate.data.formatting import make_collate
from obliviate.methods.base import resolve_method, sft_loss
from obliviate.models import load_model
from obliviate.runtime import share_threads
from obliviate.unlearning import build_items

torch.manual_seed(0)
lm = load_model(sys.argv[2])
items = build_items(build_fictional(), lm.formatter("plain"), resolve_method("ga"), 128, 0)
collate = make_collate(lm.tokenizer.pad_token_id)
model = lm.model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
start = time.perf_counter()
for step in range(int(sys.argv[1])):
    share_threads()
    batch = collate([items[(8 * step + j) % len(items)] for j in range(8)])
    opt.zero_grad(set_to_none=True)
    sft_loss(model, batch).loss.backward()
    opt.step()
print(f"{time.perf_counter() - start:.3f} {torch.get_num_threads()}")
"""

CLEAR = (
    "OMP_WAIT_POLICY",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "GOMP_SPINCOUNT",
    "OBLIVIATE_THREADS",
)


def settings() -> dict[str, dict[str, str]]:
    base = {k: v for k, v in os.environ.items() if k not in CLEAR}
    return {
        "obliviate default": base,
        "+ OBLIVIATE_THREADS=shared": {**base, "OBLIVIATE_THREADS": "shared"},
        "torch default": {**base, "OBLIVIATE_THREADS": "torch"},
        "OMP_WAIT_POLICY=ACTIVE": {**base, "OBLIVIATE_THREADS": "torch", "OMP_WAIT_POLICY": "ACTIVE"},
        "1 thread each": {**base, "OMP_NUM_THREADS": "1"},
    }


def run(env: dict[str, str], steps: int, n: int, model: str = "tiny") -> list[tuple[float, int]]:
    """Start ``n`` workers together; each one's (seconds of its training steps, threads)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(steps), model], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(n)
    ]
    out = []
    for p in procs:
        text, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"a worker failed (exit {p.returncode})")
        seconds, threads = text.split()
        out.append((float(seconds), int(threads)))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--model", default="tiny", help="tiny (many small kernels: the worst case) or smollm2-135m")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPUs; {args.steps} fine-tuning steps on {args.model} per worker")
    print(f"{'setting':<24} {'threads':>7} {'solo s':>8} {'together s':>11} {'slowdown':>9}")
    for name, env in settings().items():
        t0 = time.perf_counter()
        ((solo, threads),) = run(env, args.steps, 1, args.model)
        together = run(env, args.steps, args.processes, args.model)
        worst = max(s for s, _ in together)
        print(
            f"{name:<24} {threads:>7} {solo:8.1f} {worst:11.1f} {worst / solo:8.1f}x   ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
