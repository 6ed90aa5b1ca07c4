"""kill -9 at random moments, then the same command again: the result equals an uninterrupted run's.

Each command runs in a subprocess that is killed (SIGKILL: no cleanup, no atexit) after a seeded
random delay, once or twice, then resumed until it finishes. Unlearning must end with the same
weights, evaluation with the same metrics, and no hidden temporary folder may be left behind.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
BENCH = ["--benchmark.n_people", "6", "--benchmark.n_world", "2"]
UNLEARN = ["unlearn", "--model", "tiny", "--benchmark", "fictional", *BENCH, "--method", "npo", "--train.bf16", "off",
           "--train.max_steps", "12", "--train.batch_size", "4", "--train.save_every", "1"]
SEEDS = (0, 1)


def obliviate(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "obliviate", *args], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def run_to_end(args: list[str], resume: list[str], rng: random.Random, kills: int) -> int:
    """Run ``args``, SIGKILL it ``kills`` times at random moments (resuming with ``resume``), then finish."""
    killed = 0
    command = args
    for _ in range(kills + 5):
        proc = obliviate(*command)
        if killed < kills:
            time.sleep(rng.uniform(2.0, 7.0))
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                killed += 1
                command = resume
                continue
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        return killed
    raise AssertionError("the command never finished")


def leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name or ".replaced-" in p.name]


def test_unlearn_killed_and_resumed_ends_identical(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    whole = tmp_path / "whole"
    run_to_end([*UNLEARN, "--out", str(whole)], [], random.Random(0), kills=0)
    expected = load_file(str(whole / "model" / "model.safetensors"))
    killed = 0
    for seed in SEEDS:
        out = tmp_path / f"killed-{seed}"
        args = [*UNLEARN, "--out", str(out)]
        killed += run_to_end(args, [*args, "--resume"], random.Random(seed), kills=2)
        got = load_file(str(out / "model" / "model.safetensors"))
        assert max(float((expected[k] - got[k]).abs().max()) for k in expected) == 0.0
        record = json.loads((out / "run.json").read_text())
        assert record["status"] == "completed" and [r["step"] for r in record["train"]["log"]] == list(range(1, 13))
        assert not (out / "checkpoints").exists()
        assert leftovers(out.parent) == []
    assert killed >= 1  # at least one kill landed mid-run


def test_eval_killed_and_rerun_ends_identical(tmp_path: Path) -> None:
    import obliviate as ob
    from obliviate.models.io import save_model

    lm = ob.load_model("tiny")
    save_model(lm.model, lm.tokenizer, tmp_path / "m")
    ob.load_benchmark("fictional", n_people=6, n_world=2).save(tmp_path / "bench")
    args = ["eval", "--model", str(tmp_path / "m"), "--benchmark", str(tmp_path / "bench"), "--eval.precision", "fp32",
            "--eval.gradnorm_items", "4"]
    run_to_end([*args, "--out", str(tmp_path / "whole")], [], random.Random(0), kills=0)
    expected = json.loads((tmp_path / "whole" / "run.json").read_text())["metrics"]
    for seed in SEEDS:
        out = tmp_path / f"killed-{seed}"
        run_to_end([*args, "--out", str(out)], [*args, "--out", str(out)], random.Random(seed), kills=1)
        got = json.loads((out / "run.json").read_text())["metrics"]
        assert got.keys() == expected.keys()
        for key, entry in expected.items():
            assert got[key]["values"] == entry["values"], key
            assert got[key]["aggregate"] == entry["aggregate"], key
        assert leftovers(tmp_path) == []


def test_prepare_killed_and_resumed_ends_identical(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    args = ["prepare", "--model", "tiny", *BENCH, "--train.epochs", "4", "--train.save_every", "2",
            "--summary_new_tokens", "4"]
    run_to_end([*args, "--out", str(tmp_path / "whole")], [], random.Random(0), kills=0)
    for seed in SEEDS:
        out = tmp_path / f"killed-{seed}"
        run_to_end([*args, "--out", str(out)], [*args, "--out", str(out), "--resume"], random.Random(seed), kills=2)
        for role in ("target", "retain"):
            want = load_file(str(tmp_path / "whole" / role / "model.safetensors"))
            got = load_file(str(out / role / "model.safetensors"))
            assert max(float((want[k] - got[k]).abs().max()) for k in want) == 0.0, role
        assert json.loads((out / "prepare.json").read_text())["status"] == "completed"
        assert leftovers(tmp_path) == [] and not (out / ".checkpoints").exists()
