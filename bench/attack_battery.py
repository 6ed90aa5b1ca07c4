"""Does the forgetting hold on SmolLM2? Attacks on the demo's runs, with the time each takes.

Usage:
    python bench/attack_battery.py DEMO_DIR [--methods ga,grad_diff,npo,simnpo,rmu] [--attacks relearn,quantize]
    python bench/attack_battery.py DEMO_DIR --battery grad_diff

DEMO_DIR is the folder ``obliviate demo`` wrote (``obliviate-demo``): its ``runs/retain`` is the
retain-only model's evaluation, and the prepared models it names are reused. A method without a
run there is unlearned from the prepared target first (the demo's schedule when it has one, else
the method's defaults) and evaluated like the demo's runs. Each attack runs on the unlearned and
on the retain-only model; the table prints each forget metric before -> after and the retain-only
model after the same attack, then the verdict's counts. ``--battery RUN`` runs the standard battery
(``obliviate attack --all``) on one run and prints each attack's wall time, and the total, in
seconds measured in this one process.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def ensure_run(demo: Path, method: str) -> Path:
    """The demo's run of ``method``, unlearned and evaluated first when it has none."""
    import obliviate as ob
    from obliviate.runs.demo import DEMO_METHOD, DEMO_TRAIN

    run_dir = demo / "runs" / method
    if (run_dir / "run.json").is_file() and json.loads((run_dir / "run.json").read_text()).get("metrics"):
        return run_dir
    retain = json.loads((demo / "runs" / "retain" / "run.json").read_text())
    prep = Path(retain["eval"]["model"]).parent
    t0 = time.perf_counter()
    run = ob.unlearn(str(prep / "target"), prep / "benchmark", method, method=DEMO_METHOD.get(method),
                     train=DEMO_TRAIN.get(method, DEMO_TRAIN["grad_diff"]), out=run_dir, overwrite=True, progress=False)
    ob.evaluate(run.model, prep / "benchmark", reference=demo / "runs" / "retain", out=run_dir,
                options=retain["eval"]["options"])
    print(f"{method}: unlearned and evaluated in {time.perf_counter() - t0:.0f} s", flush=True)
    return run_dir


def main() -> None:
    import obliviate as ob
    from obliviate.runs.attack_run import summary_lines

    ap = argparse.ArgumentParser()
    ap.add_argument("demo", type=Path)
    ap.add_argument("--methods", default="ga,grad_diff,npo,simnpo,rmu")
    ap.add_argument("--attacks", default="relearn,quantize")
    ap.add_argument("--battery", help="time the standard battery on this run (a method name)")
    args = ap.parse_args()
    keys = ["forget/prob", "forget/rouge", "forget/truth_ratio"]
    if args.battery:
        run_dir = ensure_run(args.demo, args.battery)
        t0 = time.perf_counter()
        record = ob.attack(run_dir, "all", overwrite=True, progress=False)
        total = time.perf_counter() - t0
        for label, stored in record.data["attacks"].items():
            print(f"{label:<14} {stored['seconds']:7.1f} s (unlearned {stored.get('unlearned_seconds', 0):.1f}, "
                  f"retain-only {stored.get('reference_seconds', 0):.1f})")
        print(f"{'battery':<14} {total:7.1f} s for {len(record.data['attacks'])} attacks")
        for line in summary_lines(record, keys):
            print(line)
        return
    for method in args.methods.split(","):
        run_dir = ensure_run(args.demo, method)
        jobs = [(a, {}) for a in args.attacks.split(",") if a != "quantize"]
        jobs += [("quantize", {"bits": b}) for b in (4, 8) if "quantize" in args.attacks.split(",")]
        for attack, options in jobs:
            t0 = time.perf_counter()
            record = ob.attack(run_dir, attack, options={attack: options} if options else None, progress=False)
            print(f"[{method}] {attack} {options or ''}: {time.perf_counter() - t0:.0f} s", flush=True)
        for line in summary_lines(record, keys):
            print(f"[{method}] {line}", flush=True)


if __name__ == "__main__":
    main()
