"""Bad values are refused before anything loads; a run that blows up never saves non-finite weights as good."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from obliviate.cli.main import main

BASE = ["unlearn", "--model", "tiny", "--benchmark", "fictional", "--benchmark.n_people", "6",
        "--benchmark.n_world", "2", "--train.bf16", "off", "--method", "ga"]


@pytest.mark.parametrize(
    ("flag", "value", "named"),
    [
        ("--train.lr", "inf", "train.lr"), ("--train.lr", "nan", "train.lr"), ("--train.lr", "-1e-4", "train.lr"),
        ("--train.lr", "0", "train.lr"), ("--train.max_length", "0", "train.max_length"),
        ("--train.batch_size", "0", "train.batch_size"), ("--train.epochs", "-1", "train.epochs"),
        ("--train.max_steps", "-3", "train.max_steps"), ("--train.save_every", "-1", "train.save_every"),
        ("--train.warmup", "-0.1", "train.warmup"), ("--train.weight_decay", "inf", "train.weight_decay"),
        ("--train.max_grad_norm", "nan", "train.max_grad_norm"), ("--stop.forget_loss_above", "-1", "stop.forget_loss_above"),
    ],
)
def test_bad_numbers_are_refused_before_the_model_loads(
    flag: str, value: str, named: str, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr("obliviate.models.io.load_model", no_loading)
    assert main([*BASE, "--out", str(tmp_path / "run"), flag, value]) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_an_absurd_learning_rate_keeps_the_last_good_weights(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """lr 1e30 makes the first update's weights ~1e30: the run stops as diverged with the weights before it."""
    import torch
    from safetensors.torch import load_file

    from obliviate.models import load_model

    out = tmp_path / "run"
    assert main([*BASE, "--out", str(out), "--train.lr", "1e30", "--train.max_steps", "4",
                 "--train.max_grad_norm", "0"]) == 3
    assert "diverged" in capsys.readouterr().err
    data = json.loads((out / "run.json").read_text())
    assert data["status"] == "diverged" and data["train"]["steps"] == 0
    saved = load_file(str(out / "model" / "model.safetensors"))
    start = load_model("tiny").model.state_dict()
    assert all(math.isfinite(float(t.abs().max())) for t in saved.values())
    assert all(torch.equal(saved[k], start[k]) for k in saved)  # the weights of step 0, not of the blown-up update


def _run_folder(path: Path, rouge: float) -> Path:
    path.mkdir(parents=True)
    record = {"schema": 2, "kind": "eval", "metrics": {"forget/rouge": {
        "aggregate": rouge, "values": [rouge], "item_ids": ["a"], "direction": "lower", "description": "ROUGE"}}}
    (path / "run.json").write_text(json.dumps(record))
    return path


def test_the_report_never_writes_over_files_it_did_not_create(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = _run_folder(tmp_path / "runs" / "npo", 0.2)
    retain = _run_folder(tmp_path / "runs" / "retain", 0.1)
    before = (run / "run.json").read_bytes()
    # out beside a run's own run.json: refused even with --overwrite
    for flags in ([], ["--overwrite"]):
        assert main(["report", str(run), str(retain), "--out", str(run / "run.html"), *flags]) == 2
        assert "belongs to the run" in capsys.readouterr().err
    assert (run / "run.json").read_bytes() == before and not (run / "run.html").exists()
    # a model folder's config.json: refused
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    assert main(["report", str(run), "--out", str(model / "config.html")]) == 2
    assert (model / "config.json").read_text() == "{}"
    # a user's own file next to the page: refused, unless --overwrite
    (tmp_path / "notes.csv").write_text("mine")
    assert main(["report", str(run), str(retain), "--out", str(tmp_path / "notes.html")]) == 2
    assert "was not written by `obliviate report`" in capsys.readouterr().err
    assert (tmp_path / "notes.csv").read_text() == "mine"
    assert main(["report", str(run), str(retain), "--out", str(tmp_path / "notes.html"), "--overwrite"]) == 0
    # a report replaces its own earlier files without being asked
    out = tmp_path / "report.html"
    assert main(["report", str(run), str(retain), "--out", str(out)]) == 0
    assert main(["report", str(run), str(retain), "--out", str(out)]) == 0
    assert (tmp_path / "report.csv").read_text().startswith("model,role,method")


def test_an_interrupted_overwrite_leaves_no_stale_mix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`unlearn --overwrite` moves the old run aside first: killed mid-run, no old model or metrics remain."""
    from obliviate.methods.ga import GA

    out = tmp_path / "run"
    assert main([*BASE, "--out", str(out), "--train.max_steps", "1"]) == 0
    record = json.loads((out / "run.json").read_text())
    record["metrics"] = {"forget/rouge": {"aggregate": 0.9, "values": [], "item_ids": []}}
    (out / "run.json").write_text(json.dumps(record))

    def interrupted(self: object, model: object, batch: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(GA, "loss", interrupted)
    assert main([*BASE, "--out", str(out), "--train.max_steps", "1", "--overwrite"]) == 130
    data = json.loads((out / "run.json").read_text())
    assert data["status"] == "interrupted" and "metrics" not in data
    assert not (out / "model").exists()  # the old model is gone, not mixed with the new options
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # nothing left aside


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


def test_folder_swaps_recover_from_a_kill_and_leave_nothing_behind(tmp_path: Path) -> None:
    import os

    from obliviate.files import recover_folder, write_folder

    dead = _dead_pid()
    final = tmp_path / "model"
    # killed between the two renames: NAME is missing, the good folder sits in .NAME.old-PID
    stranded = tmp_path / f".model.old-{dead}"
    stranded.mkdir()
    (stranded / "weights").write_text("good")
    (tmp_path / f".model.tmp-{dead}-abc").mkdir()  # a half-written copy of a dead process
    live = tmp_path / f".model.tmp-{os.getpid()}-xyz"
    live.mkdir()  # ours, still being written: kept
    recover_folder(final)
    assert (final / "weights").read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model", live.name])
    live.rmdir()
    write_folder(final, lambda tmp: (tmp / "weights").write_text("new"))
    assert (final / "weights").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    mask = os.umask(0)
    os.umask(mask)
    assert final.stat().st_mode & 0o777 == 0o777 & ~mask  # the user's umask, not mkdtemp's 0700

    def fails(tmp: Path) -> None:
        (tmp / "half").write_text("x")
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_folder(final, fails)
    assert (final / "weights").read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_run_that_failed_before_saving_anything_needs_no_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"schema": 2, "kind": "unlearn", "status": "running"}))
    assert main([*BASE, "--out", str(out), "--train.max_steps", "1"]) == 0
    assert json.loads((out / "run.json").read_text())["status"] == "completed"


def test_a_truncated_weights_file_and_an_out_that_is_a_file_get_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from obliviate.models import load_model, save_model

    lm = load_model("tiny")
    save_model(lm.model, lm.tokenizer, tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert main(["unlearn", "--model", str(tmp_path / "m"), *BASE[3:], "--out", str(tmp_path / "run"),
                 "--train.max_steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "damaged or truncated" in err and "Traceback" not in err
    (tmp_path / "file").write_text("mine")
    assert main([*BASE, "--out", str(tmp_path / "file")]) == 2
    assert "is an existing file" in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "mine"


def test_repeated_ids_and_items_both_forgotten_and_kept_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import dataclasses

    import obliviate as ob

    task = ob.load_benchmark("fictional", n_people=6, n_world=2)
    same_ids = dataclasses.replace(task, forget=[dataclasses.replace(r, id="x") for r in task.forget])
    same_ids.save(tmp_path / "ids")  # a prepared folder: refused on load, naming the file and line
    assert main(["eval", "--model", "tiny", "--benchmark", str(tmp_path / "ids"), "--out", str(tmp_path / "e")]) == 2
    assert "forget.jsonl: line 2: id 'x'" in capsys.readouterr().err
    with pytest.raises(ob.DataError, match="repeats the id 'x'"):  # a task in memory: refused before it runs
        ob.evaluate("tiny", same_ids, metrics="forget/prob")
    overlap = dataclasses.replace(task, retain=[*task.retain, dataclasses.replace(task.forget[0], id="copy")])
    overlap.save(tmp_path / "overlap")
    assert main([*BASE[:3], "--benchmark", str(tmp_path / "overlap"), "--method", "ga", "--out", str(tmp_path / "u")]) == 2
    assert "both forgotten and kept" in capsys.readouterr().err


def test_a_model_folder_that_lists_its_own_code_never_runs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """config.json's auto_map: a type transformers knows loads with its own class; an unknown type is refused early."""
    import transformers

    import obliviate as ob
    from obliviate.errors import ModelError
    from obliviate.models.io import save_model

    lm = ob.load_model("tiny")
    folder = save_model(lm.model, lm.tokenizer, tmp_path / "m")
    (folder / "modeling_x.py").write_text("raise RuntimeError('the folder code ran')\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    loaded = ob.load_model(folder)  # a llama that lists custom classes: transformers ignores them
    assert type(loaded.model).__name__ == "LlamaForCausalLM"

    config.update(model_type="x_lm", auto_map={"AutoConfig": "configuration_x.XConfig", **config["auto_map"]})
    (folder / "config.json").write_text(json.dumps(config))

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a tokenizer or weights were loaded before the config was checked")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", no_loading)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_loading)
    with pytest.raises(ModelError, match=r"type 'x_lm' that only its own Python code.*trust_remote_code=True"):
        ob.load_model(folder)
    (folder / "config.json").write_text("[" * 100_000)
    with pytest.raises(ModelError, match="config.json: not a readable JSON config"):
        ob.load_model(folder)
