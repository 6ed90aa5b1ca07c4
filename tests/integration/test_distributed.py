"""Two processes under ``accelerate launch`` train the same weights, and evaluate to the same
numbers, as one process.

Three steps of NPO on the tiny model, global batch 8: the launched run gives each process 4 items
of every batch and averages gradients across the two processes; the single process sees all 8.
NPO averages a per-sequence loss over the batch, so the two are equal up to floating-point
reduction order (``retain_loss: none``: a token-mean retain NLL would weight the two half-batches
by their token counts, a small genuine difference). Measured on a 2-core CPU: max |Δw| = 2.6e-5
after 3 AdamW steps at lr 1e-3 (losses equal to 1e-6); the test allows 1e-4.

On a machine without GPUs, ``accelerate launch --cpu --num_processes 2`` starts only one process;
``--multi_gpu --num_processes 2`` starts two (torchrun) and each trains on the CPU with gloo.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

TOLERANCE = 1e-4
"""Largest allowed absolute weight difference between the two runs."""

OPTIONS = [
    "unlearn", "--model", "tiny", "--benchmark", "fictional", "--benchmark.n_people", "6",
    "--benchmark.n_world", "2", "--method", "npo", "--method.retain_loss", "none",
    "--train.max_steps", "3", "--train.batch_size", "8", "--train.bf16", "off", "--train.lr", "1e-3",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def launch() -> list[str]:
    """``accelerate launch`` of ``python -m obliviate`` on two processes."""
    return [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()), "-m", "obliviate",
    ]


def test_two_processes_match_one(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from obliviate.cli.main import main

    env = ENV
    done = subprocess.run([*launch(), *OPTIONS, "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert main([*OPTIONS, "--out", str(tmp_path / "one")]) == 0

    two = json.loads((tmp_path / "two" / "run.json").read_text())
    one = json.loads((tmp_path / "one" / "run.json").read_text())
    assert two["processes"] == 2 and one["processes"] == 1
    assert len(two["train"]["log"]) == len(one["train"]["log"]) == 3
    for a, b in zip(one["train"]["log"], two["train"]["log"]):
        assert abs(a["loss"] - b["loss"]) < 1e-4
    w1 = load_file(str(tmp_path / "one" / "model" / "model.safetensors"))
    w2 = load_file(str(tmp_path / "two" / "model" / "model.safetensors"))
    assert w1.keys() == w2.keys()
    diff = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    assert diff < TOLERANCE, f"max |w_one - w_two| = {diff:.2e}"
    # the runs did train: the weights moved (by 2.0e-3) far more than they differ (2.6e-5)
    from obliviate.models import load_model

    start = load_model("tiny").model.state_dict()
    assert max(float((w1[k] - start[k]).abs().max()) for k in w1) > 10 * TOLERANCE


EVAL = [
    "eval", "--model", "tiny", "--benchmark", "fictional", "--benchmark.n_people", "6", "--benchmark.n_world", "2",
    "--eval.precision", "fp32", "--eval.batch_size", "4", "--eval.gradnorm_items", "5",
    "--metrics", "forget/rouge,forget/prob,forget/truth_ratio,retain/rouge,forget/mia_gradnorm",
]


def test_two_process_evaluation_equals_one_item_by_item(tmp_path: Path) -> None:
    """The launched evaluation splits its scoring and generation batches between the processes
    (each batch shaped as in one process) and gathers them, and GradNorm's items likewise (5 of
    each side: an odd number, so the processes hold unequal shares): every per-item value is the
    single process's exactly, and only the first process writes run.json."""
    two = subprocess.run([*launch(), *EVAL, "--out", str(tmp_path / "two")], env=ENV, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "obliviate", *EVAL, "--out", str(tmp_path / "one")], env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.stdout.count("wrote ") == 1  # one process reported
    r2 = json.loads((tmp_path / "two" / "run.json").read_text())
    r1 = json.loads((tmp_path / "one" / "run.json").read_text())
    assert r2["eval"]["processes"] == 2 and r1["eval"]["processes"] == 1
    assert set(r1["metrics"]) == set(r2["metrics"]) >= {"forget/rouge", "forget/prob", "forget/truth_ratio", "retain/rouge",
                                                        "forget/mia_gradnorm"}
    for key, entry in r1["metrics"].items():
        other = r2["metrics"][key]
        assert (entry["aggregate"], entry["item_ids"], entry["values"]) == (other["aggregate"], other["item_ids"], other["values"]), key
        assert entry["values"], key  # the comparison is item by item
    assert r1["generations"] == r2["generations"]
