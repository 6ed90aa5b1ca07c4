"""`obliviate demo` cold (empty cache: conversion, preparation, everything) and warm (prepared models cached).

Goal: cold at most 5 minutes, warm at most 1.5 minutes on 2 cores. Both runs happen here, one
after the other, so their ratio is measured under the same load; each run's stage timings
(``OUT/demo-timings.json``) are printed after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(out: Path, env: dict[str, str]) -> tuple[float, dict[str, float]]:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "obliviate", "demo", "--out", str(out)], env=env, check=True)
    wall = time.perf_counter() - t0
    return wall, json.loads((out / "demo-timings.json").read_text())


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OBLIVIATE_CACHE": str(Path(tmp) / "cache"), "HF_HUB_OFFLINE": "1"}
        cold, cold_stages = timed(Path(tmp) / "cold", env)
        warm, warm_stages = timed(Path(tmp) / "warm", env)
    for name, stages in (("cold", cold_stages), ("warm", warm_stages)):
        print(f"{name} stages: " + ", ".join(f"{k} {v:.0f} s" for k, v in stages.items()))
    print(f"demo cold: {cold:.0f} s ({cold / 300:.2f} of the 5-minute budget)")
    print(f"demo warm: {warm:.0f} s ({warm / 90:.2f} of the 1.5-minute budget)")
    print(f"warm / cold: {warm / cold:.2f}")


if __name__ == "__main__":
    main()
