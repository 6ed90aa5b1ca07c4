"""`obliviate prepare` end to end on the tiny model, and the command line's fail-fast checks."""

from __future__ import annotations

import json
import time

from obliviate.cli.main import main
from obliviate.data.task import UnlearningTask


def test_prepare_writes_benchmark_target_and_retain(tmp_path, capsys):
    out = tmp_path / "prep"
    code = main(
        ["prepare", "--model", "tiny", "--out", str(out), "--benchmark.n_people", "6", "--train.epochs", "1",
         "--summary_new_tokens", "8", "--rehearsal", "4", "--freeze_embeddings", "true", "--freeze_layers", "1"]
    )
    assert code == 0
    # The embedding (tied to the output matrix) and the lowest block stayed fixed; the others trained.
    import torch

    from obliviate.models import load_model

    base, target = load_model("tiny").model, load_model(out / "target").model
    assert torch.equal(base.get_input_embeddings().weight, target.get_input_embeddings().weight)
    assert all(torch.equal(p, q) for p, q in zip(base.model.layers[0].parameters(), target.model.layers[0].parameters()))
    assert not torch.equal(base.model.layers[1].mlp.down_proj.weight, target.model.layers[1].mlp.down_proj.weight)
    task = UnlearningTask.load(out / "benchmark")
    assert task.metadata["n_people"] == 6 and task.forget and task.retain and task.holdout
    for role in ("target", "retain"):
        assert (out / role / "model.safetensors").is_file()
    summary = json.loads((out / "prepare.json").read_text())
    assert set(summary["models"]) == {"target", "retain"}
    assert summary["config"]["rehearsal"] == 4 and summary["config"]["freeze_embeddings"] is True
    # The fixed embedding and lowest block ran once per example, not at every step (training.prefix).
    assert summary["training"]["target"]["blocks_run_once"] == 1 == summary["training"]["retain"]["blocks_run_once"]
    assert summary["training"]["target"]["attention"] is None  # the tiny recipe trains in fp32: sdpa (training.attention)
    # The summary reads at most summary_items (50) of each split, spread over it.
    assert summary["models"]["target"]["retain"]["items"] == min(50, len(task.retain))
    assert "forget ROUGE-L" in capsys.readouterr().out
    # Running it again without --resume or --overwrite refuses to touch the output.
    assert main(["prepare", "--model", "tiny", "--out", str(out)]) == 2
    same = ["prepare", "--model", "tiny", "--out", str(out), "--resume", "--benchmark.n_people", "6", "--train.epochs", "1",
            "--summary_new_tokens", "8", "--rehearsal", "4", "--freeze_embeddings", "true", "--freeze_layers", "1"]
    # --resume with other options refuses: the models were not trained with them.
    capsys.readouterr()
    changed = [("4" if a == "8" else a) for a in same]  # --summary_new_tokens 4 instead of 8
    assert main(changed) == 2
    assert "differ from the interrupted preparation in config.summary_new_tokens" in capsys.readouterr().err
    # --resume with the same options reuses the finished parts.
    assert main(same) == 0
    assert "already trained" in capsys.readouterr().out
    assert json.loads((out / "prepare.json").read_text())["status"] == "completed"


def test_an_interrupted_overwrite_never_looks_complete(tmp_path, monkeypatch):
    """`prepare --overwrite` removes the old models first; interrupted mid-way, the folder says so."""
    from obliviate.runs.prepare import prepare_complete

    out = tmp_path / "prep"
    args = ["prepare", "--model", "tiny", "--out", str(out), "--benchmark.n_people", "6", "--train.epochs", "1",
            "--summary_new_tokens", "4"]
    assert main(args) == 0 and prepare_complete(out)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("obliviate.training.loop.train", interrupted)
    assert main([*args, "--overwrite", "--benchmark.seed", "3"]) == 130
    assert not prepare_complete(out)
    assert not (out / "target").exists() and not (out / "retain").exists()  # no old model beside the new benchmark
    assert json.loads((out / "prepare.json").read_text())["status"] == "interrupted"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_config_typo_fails_fast_with_a_suggestion(tmp_path, capsys):
    t0 = time.perf_counter()
    assert main(["prepare", "--model", "tiny", "--out", str(tmp_path / "x"), "--train.lrr", "1e-4"]) == 2
    err = capsys.readouterr().err
    assert "unknown option 'train.lrr'" in err and "Did you mean 'lr'" in err
    assert main(["prepare", "--model", "tiny", "--out", str(tmp_path / "x"), "--benchmark.n_peple", "5"]) == 2
    assert "Did you mean 'n_people'" in capsys.readouterr().err
    assert main(["prepare", "--model", "tiny", "--out", str(tmp_path / "x"), "--benchmark", "fictionl"]) == 2
    assert "Did you mean 'fictional'" in capsys.readouterr().err
    assert main(["prepare", "--model", "tiny", "--out", str(tmp_path / "x"), "--rehearsal", "100"]) == 2
    assert "rehearsal must be between 0 and 80" in capsys.readouterr().err
    assert main(["prepare", "--model", "tiny", "--out", str(tmp_path / "x"), "--freeze_layers", "-1"]) == 2
    assert "freeze_layers must be 0" in capsys.readouterr().err
    assert main(["prepare", "--model", "tiny", "--out", str(tmp_path / "x"), "--summary_items", "-1"]) == 2
    assert "summary_items must be 0 (every item) or more" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 20  # nothing was trained or loaded
    assert not (tmp_path / "x").exists()


def test_the_summary_reads_items_spread_over_the_split():
    from obliviate.runs.prepare import spread

    assert spread(list(range(10)), 0) == list(range(10))
    assert spread(list(range(10)), 20) == list(range(10))
    assert spread(list(range(10)), 5) == [0, 2, 4, 6, 8]
    assert spread(list(range(140)), 50)[-1] == 137 and len(set(spread(list(range(140)), 50))) == 50
