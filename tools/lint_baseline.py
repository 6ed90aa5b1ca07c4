"""Type errors and over-long lines, held to baselines that can only shrink (`make lint`).

Runs mypy over src/obliviate (configured in pyproject.toml) and ruff's line-length rule (E501,
100 columns, over src, tests and bench), counts the errors of each file and compares the counts
with the committed baselines tools/mypy-baseline.json and tools/ruff-e501-baseline.json
(file -> count). It fails, naming the files, when a file has more errors than its baseline, when a
file not in the baseline has any, or when a file in :data:`STRICT` has a type error at all.

    python tools/lint_baseline.py                  # check (make lint)
    python tools/lint_baseline.py --update         # lower the baselines to today's counts
    python tools/lint_baseline.py --update --allow-growth   # accept more errors (say why)

A count that fell is reported; `--update` (make lint-baseline) writes it down, so it cannot grow
back. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MYPY_BASELINE = ROOT / "tools" / "mypy-baseline.json"
RUFF_BASELINE = ROOT / "tools" / "ruff-e501-baseline.json"
RUFF_PATHS = ["src", "tests", "bench"]

STRICT = [
    "src/obliviate/registry.py",
    "src/obliviate/config.py",
    "src/obliviate/runs/",
    "src/obliviate/record/",
    "src/obliviate/api.py",
]
"""Files (or folders, ending in "/") that must have no type error at all: no baseline for them."""

STRICT_LATER: list[str] = []
"""Files that are to join :data:`STRICT`; until then the baseline holds them like any other."""

MYPY_LINE = re.compile(r"^(?P<path>[^:\s][^:]*\.pyi?):\d+(?::\d+)?: error: ")


def run_mypy() -> tuple[Counter[str], float]:
    """mypy's error count per file (paths relative to the project), and its run time in seconds."""
    cmd = [sys.executable, "-m", "mypy", "--no-error-summary", "--no-pretty", "--no-color-output"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    counts: Counter[str] = Counter()
    for line in proc.stdout.splitlines():
        m = MYPY_LINE.match(line)
        if m:
            counts[_relative(m["path"])] += 1
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not counts):
        sys.exit(f"mypy failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return counts, seconds


def run_ruff_e501() -> Counter[str]:
    """Lines over the configured length (pyproject: 100 columns), per file."""
    cmd = [sys.executable, "-m", "ruff", "check", "--select", "E501", "--output-format", "json",
           "--no-cache", "--exit-zero", *RUFF_PATHS]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"ruff failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    counts: Counter[str] = Counter()
    for item in json.loads(proc.stdout or "[]"):
        if item.get("code") == "E501":
            counts[_relative(item["filename"])] += 1
    return counts


def _relative(path: str) -> str:
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.resolve().relative_to(ROOT)
        except ValueError:
            pass
    return p.as_posix()


def is_strict(path: str, strict: Sequence[str] = STRICT) -> bool:
    """Whether ``path`` is, or is under, an entry of ``strict``."""
    return any(path == s or (s.endswith("/") and path.startswith(s)) for s in strict)


def load(path: Path) -> dict[str, int]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def save(path: Path, counts: Counter[str]) -> None:
    data = {k: counts[k] for k in sorted(counts) if counts[k] > 0}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def compare(
    name: str, counts: Counter[str], baseline: dict[str, int]
) -> tuple[list[str], list[str]]:
    """(grown, shrunk): one line per file above its baseline, one per file below it."""
    grown, shrunk = [], []
    for path in sorted(set(counts) | set(baseline)):
        now, was = counts.get(path, 0), baseline.get(path, 0)
        if now > was:
            what = "not in the baseline, now" if path not in baseline else f"{was} ->"
            grown.append(f"  {path}: {what} {now} {name}")
        elif now < was:
            shrunk.append(f"  {path}: {was} -> {now} {name}")
    return grown, shrunk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--update", action="store_true", help="rewrite the baselines to today's counts"
    )
    parser.add_argument("--allow-growth", action="store_true",
                        help="with --update: accept a count that grew (never for a strict file)")
    args = parser.parse_args(argv)
    if args.allow_growth and not args.update:
        parser.error("--allow-growth goes with --update")

    mypy, seconds = run_mypy()
    ruff = run_ruff_e501()
    checks = [("mypy errors", mypy, MYPY_BASELINE), ("lines over 100 columns", ruff, RUFF_BASELINE)]

    failed = False
    strict = sorted(f"  {p}: {n} mypy errors" for p, n in mypy.items() if is_strict(p))
    if strict:
        failed = True
        print("Files that must type-check cleanly (STRICT in tools/lint_baseline.py) have errors:")
        print("\n".join(strict))
    for name, counts, path in checks:
        baseline = load(path)
        grown, shrunk = compare(name, counts, baseline)
        rel = path.relative_to(ROOT).as_posix()
        if grown:
            print(f"More {name} than {rel} allows:" if not args.update else f"Grown past {rel}:")
            print("\n".join(grown))
            if not (args.update and args.allow_growth):
                failed = True
        if shrunk and not args.update:
            print(f"Fewer {name} than {rel} records (lock it in with `make lint-baseline`):")
            print("\n".join(shrunk))
        if args.update and not strict and (not grown or args.allow_growth):
            save(path, counts)
            print(f"wrote {rel}: {sum(counts.values())} {name} in {len(counts)} files")

    later = sum(n for p, n in mypy.items() if is_strict(p, STRICT_LATER))
    print(f"mypy: {sum(mypy.values())} errors in {len(mypy)} files ({seconds:.1f} s), {later} of "
          f"them in STRICT_LATER; E501: {sum(ruff.values())} lines in {len(ruff)} files")
    if failed:
        if args.update:
            print("Baselines not updated for what grew: fix the new errors, or pass --allow-growth "
                  "(strict files never take a baseline).")
        else:
            print("Fix the new errors (run `.venv/bin/mypy` or `.venv/bin/ruff check --select E501 "
                  "src tests bench` to see them).")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
