"""Start-up of the commands a user types first: `obliviate --help`, `obliviate ls methods|metrics|benchmarks|attacks`.

Goal: each under 1 s of wall time on 2 cores, and none imports torch (the Python API is lazy, and
the registries name their entries as "module:attr" strings). Each command runs 5 times in fresh
processes; the median is printed with the ratio to a bare `python -c pass` measured in the same
run (the interpreter's own start-up, which no change of ours can remove).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

COMMANDS = (["--help"], ["ls", "methods"], ["ls", "metrics"], ["ls", "benchmarks"], ["ls", "attacks"])
REPEATS = 5


def wall(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - t0


def imports_torch(command: list[str]) -> bool:
    code = (
        "import sys\nfrom obliviate.cli.main import main\n"
        f"try:\n    main({command!r})\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1] == "True"


def main() -> None:
    bare = statistics.median(wall([sys.executable, "-c", "pass"]) for _ in range(REPEATS))
    print(f"python -c pass: {bare:.2f} s (median of {REPEATS})")
    worst = 0.0
    for command in COMMANDS:
        seconds = statistics.median(wall([sys.executable, "-m", "obliviate", *command]) for _ in range(REPEATS))
        worst = max(worst, seconds)
        torch = "imports torch" if imports_torch(command) else "no torch"
        print(f"obliviate {' '.join(command):16s} {seconds:.2f} s  ({seconds / bare:.1f}x python -c pass; {torch})")
    print(f"slowest: {worst:.2f} s ({'within' if worst < 1.0 else 'over'} the 1 s goal)")


if __name__ == "__main__":
    main()
