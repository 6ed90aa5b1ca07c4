"""The run layer's shared pieces: the checks, the recorder, and the run-kind protocol with a toy kind."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from obliviate.errors import ConfigError, OutputExistsError
from obliviate.files import write_atomic
from obliviate.record import Recorder, RunRecord, identity_digest
from obliviate.runs.base import OutputOptions, RunKind, launch
from obliviate.runs.checks import check_output, check_same_identity, clear_owned, decide_output


# A toy run kind: ten lines that get resume, overwrite safety, identity and the record for free.
@dataclass
class CountRequest(OutputOptions):
    upto: int = 3
    fail_at: int = -1


class Count(RunKind[CountRequest, CountRequest]):
    name, owned = "count", ("numbers.txt",)

    def plan(self, request: CountRequest) -> CountRequest:
        if request.upto < 1:
            raise ConfigError(f"upto must be at least 1, got {request.upto}")
        return request

    def identity(self, plan: CountRequest) -> dict[str, Any]:
        return {"upto": plan.upto}

    def execute(self, plan: CountRequest, recorder: Recorder) -> dict[str, Any]:
        for i in range(plan.upto):
            if i == plan.fail_at:
                raise RuntimeError(f"no number {i}")
            recorder.merge({"progress": i + 1})
        if recorder.out is not None:
            (recorder.out / "numbers.txt").write_text(" ".join(map(str, range(plan.upto))))
        return {"total": sum(range(plan.upto))}


def test_a_toy_run_kind_gets_the_lifecycle(tmp_path: Path) -> None:
    out = tmp_path / "run"
    record = launch(Count(), CountRequest(out=out, upto=4))
    assert record.status == "completed" and record.data["total"] == 6 and record.kind == "count"
    assert json.loads((out / "run.json").read_text())["digest"] == identity_digest({"upto": 4})
    # a finished run is found again, not recomputed; a resume with another identity is refused
    before = (out / "numbers.txt").stat().st_mtime_ns
    assert launch(Count(), CountRequest(out=out, upto=4, resume=True)).data["total"] == 6
    assert (out / "numbers.txt").stat().st_mtime_ns == before
    with pytest.raises(ConfigError, match="differ from .* in identity.upto"):
        launch(Count(), CountRequest(out=out, upto=5, resume=True))
    with pytest.raises(OutputExistsError, match="--overwrite"):
        launch(Count(), CountRequest(out=out, upto=5))
    # overwrite replaces what the kind wrote and keeps the user's files
    (out / "notes.txt").write_text("mine")
    assert launch(Count(), CountRequest(out=out, upto=5, overwrite=True)).data["total"] == 10
    assert (out / "notes.txt").read_text() == "mine"
    # a bad request fails before anything is written; in memory there is no folder at all
    with pytest.raises(ConfigError, match="upto must be at least 1"):
        launch(Count(), CountRequest(out=tmp_path / "never", upto=0))
    assert not (tmp_path / "never").exists()
    assert launch(Count(), CountRequest(upto=2)).path is None


def test_a_run_that_raises_is_marked_failed_with_its_reason(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="no number 2"):
        launch(Count(), CountRequest(out=out, upto=4, fail_at=2))
    record = RunRecord.load(out)
    assert record.status == "failed" and not record.finished
    assert record.failure is not None and (record.failure.error, record.failure.message) == (
        "RuntimeError",
        "no number 2",
    )
    assert record.data["progress"] == 2


def test_overwrite_never_clears_a_folder_obliviate_did_not_write(tmp_path: Path) -> None:
    mine = tmp_path / "x"
    (mine / "model").mkdir(parents=True)
    (mine / "notes.txt").write_text("precious")
    with pytest.raises(
        OutputExistsError, match="holds no run.json: it is not a folder obliviate wrote"
    ):
        decide_output(mine, overwrite=True)
    with pytest.raises(OutputExistsError, match="nothing|no run of this kind to resume"):
        decide_output(mine, resume=True)
    with pytest.raises(OutputExistsError, match="already exists"):
        decide_output(mine)
    assert (mine / "notes.txt").read_text() == "precious"
    assert decide_output(tmp_path / "new") == "new"
    (tmp_path / "empty").mkdir()
    assert decide_output(tmp_path / "empty", resume=True) == "new"


def test_clear_owned_removes_only_what_the_kind_wrote_and_stale_temporaries(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "w.safetensors").write_text("w")
    (run / "run.json").write_text("{}")
    (run / ".run.json.lock").write_text("")
    (run / ".run.json.999999.tmp").write_text("half")
    (run / ".model.tmp-999999-abc").mkdir()
    (run / "notes.txt").write_text("mine")
    (run / "analysis").mkdir()
    clear_owned(run, ("model", "checkpoints"))
    assert sorted(p.name for p in run.iterdir()) == ["analysis", "notes.txt"]


def test_output_is_never_an_input_nor_holds_one(tmp_path: Path) -> None:
    model = tmp_path / "runs" / "a" / "model"
    model.mkdir(parents=True)
    with pytest.raises(OutputExistsError, match="is the input folder"):
        check_output(model, (model,))
    with pytest.raises(OutputExistsError, match="is the input folder"):
        check_output(model / "sub", (model,))
    with pytest.raises(OutputExistsError, match="lies inside the output"):
        check_output(tmp_path / "runs", (model,))
    assert (
        check_output(tmp_path / "runs" / "a", (model,), adds_only=True)
        == (tmp_path / "runs" / "a").resolve()
    )
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputExistsError, match="is an existing file"):
        check_output(tmp_path / "f")


def test_resume_names_what_differs() -> None:
    check_same_identity(None, {"a": 1})
    check_same_identity({"a": 1}, {"a": 1})
    with pytest.raises(ConfigError, match=r"in config\.lr, seed"):
        check_same_identity(
            {"config": {"lr": 1, "x": 2}, "seed": 0},
            {"config": {"lr": 2, "x": 2}, "seed": 1},
            nested=("config",),
        )


def test_the_recorder_writes_atomically_in_memory_or_on_disk(tmp_path: Path) -> None:
    memory = Recorder(None)
    memory.start({"kind": "eval"})
    memory.merge({"x": float("nan")})
    assert memory.data["status"] == "running" and memory.data["x"] is None and memory.path is None
    disk = Recorder(tmp_path / "run")
    disk.start({"kind": "eval"})
    disk.merge({"metrics": {}})
    stored = json.loads((tmp_path / "run" / "run.json").read_text())
    assert stored["schema"] == 2 and stored["status"] == "running" and "started_at" in stored
    # a killed writer's temporary file is removed by the next write; a live process's is kept
    dead = tmp_path / "run" / ".run.json.999999.tmp"
    live = tmp_path / "run" / f".run.json.{os.getppid()}.tmp"
    dead.write_text("half")
    live.write_text("half")
    write_atomic(tmp_path / "run" / "run.json", "{}")
    assert not dead.exists() and live.exists()
    with pytest.raises(KeyboardInterrupt), disk.failing():
        raise KeyboardInterrupt
    assert RunRecord.load(tmp_path / "run").status == "interrupted"


def test_the_published_schema_is_generated_from_the_types_and_catches_a_damaged_record() -> None:
    import jsonschema

    from obliviate.record.schema import json_schema, schema_text

    path = Path(__file__).resolve().parents[2] / "docs" / "run.schema.json"
    assert path.read_text() == schema_text(), (
        "regenerate: python -m obliviate.record.schema > docs/run.schema.json"
    )
    validator = jsonschema.Draft202012Validator(json_schema())
    good = {
        "schema": 2,
        "kind": "eval",
        "metrics": {
            "forget/rouge": {"aggregate": None, "values": [0.5, None], "item_ids": ["a", "b"]}
        },
    }
    assert not list(validator.iter_errors(good))
    for bad in (
        {"metrics": []},
        {"status": 3},
        {"train": {"steps": "ten"}},
        {"attack_verdict": {"items": {"a": {"verdict": 1}}}},
    ):
        assert list(validator.iter_errors(bad)), bad


def test_sections_read_typed_and_tolerant() -> None:
    record = RunRecord(
        {
            "eval": {"model": "m", "processes": "two", "identity": {"model": "folder:x"}},
            "attacks": {
                "relearn": {"unlearned": {"forget/prob": {"aggregate": 0.5}}, "items": None}
            },
            "attack_verdict": "damaged",
        }
    )
    assert (
        record.eval_info.model == "m" and record.eval_info.processes == 1
    )  # a wrong shape reads as the default
    assert record.eval_identity == {"model": "folder:x"}
    assert record.attacks["relearn"].unlearned == {"forget/prob": {"aggregate": 0.5}}
    assert record.attack_verdict is None and record.failure is None and record.finished
