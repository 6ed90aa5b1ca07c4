"""A damaged prepared benchmark folder fails on load with a DataError naming the file and the fix."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from obliviate.data.records import MCQ, QA, Text
from obliviate.data.task import UnlearningTask
from obliviate.errors import DataError


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    qa = [QA(question=f"q{i}", answer=f"a{i}", perturbed_answers=("w",), id=f"f{i}") for i in range(3)]
    task = UnlearningTask(
        name="toy@1/forget",
        forget=qa,
        retain=[QA(question="r", answer="ra", id="r0")],
        holdout=[QA(question="h", answer="ha", id="h0")],
        splits={"bio": [Text(text="t", id="b0")], "quiz": [MCQ(question="m", choices=("x", "y"), answer=1, id="m0")]},
        templates=["I don't know."],
        metadata={"benchmark": "toy", "version": "1"},
        roles={"options": ["quiz"]},
    )
    return task.save(tmp_path_factory.mktemp("saved") / "benchmark")


def edit_meta(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        meta = json.loads((folder / "task.json").read_text())
        change(meta)
        (folder / "task.json").write_text(json.dumps(meta))

    return apply


def edit_line(split: str, change: Callable[[dict], None], line: int = 0) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        path = folder / "splits" / f"{split}.jsonl"
        rows = [json.loads(x) for x in path.read_text().splitlines()]
        change(rows[line])
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    return apply


def write(rel: str, text: str) -> Callable[[Path], None]:
    return lambda folder: (folder / rel).write_text(text)


DAMAGE = [
    ("missing split file", lambda f: (f / "splits" / "bio.jsonl").unlink(), r"bio\.jsonl: split file is missing"),
    ("task.json not JSON", write("task.json", "{oops"), r"task\.json: line 1: invalid JSON"),
    ("task.json a list", write("task.json", "[]"), r"task\.json: must hold a JSON object"),
    ("no name", edit_meta(lambda m: m.pop("name")), r"task\.json: key 'name' is missing"),
    ("no split_kinds", edit_meta(lambda m: m.pop("split_kinds")), r"key 'split_kinds' is missing"),
    ("name not a string", edit_meta(lambda m: m.update(name=3)), r"key 'name' must be a string, got int"),
    ("metadata a list", edit_meta(lambda m: m.update(metadata=[])), r"key 'metadata' must be an object"),
    ("templates of numbers", edit_meta(lambda m: m.update(templates=[1])), r"'templates' must be a list of strings"),
    ("unknown kind", edit_meta(lambda m: m["split_kinds"].update(bio="essay")),
     r"split_kinds\.bio: unknown record kind 'essay'; the kinds are: qa, text, mcq"),
    ("unknown role", edit_meta(lambda m: m.update(roles={"optionz": ["quiz"]})),
     r"task\.json: .*unknown split role 'optionz'.*fix its 'roles'"),
    ("role not a list", edit_meta(lambda m: m.update(roles={"options": "quiz"})), r"role 'options' must list split names"),
    ("record not JSON", write("splits/retain.jsonl", "{nope\n"), r"retain\.jsonl: line 1: invalid JSON"),
    ("record not an object", write("splits/retain.jsonl", "[1]\n"), r"retain\.jsonl: line 1: a qa record must be a JSON object"),
    ("missing field", edit_line("forget", lambda r: r.pop("answer"), 1), r"forget\.jsonl: line 2: field 'answer' is missing"),
    ("answer not a string", edit_line("forget", lambda r: r.update(answer=5)), r"line 1: field 'answer' must be a string, got 5"),
    ("perturbed not strings", edit_line("forget", lambda r: r.update(perturbed_answers=[1])),
     r"field 'perturbed_answers' must be a list or null"),
    ("mcq answer a string", edit_line("quiz", lambda r: r.update(answer="1")), r"quiz\.jsonl: line 1: field 'answer' must be an integer"),
    ("mcq answer a bool", edit_line("quiz", lambda r: r.update(answer=True)), r"field 'answer' must be an integer, got True"),
    ("text prompt a number", edit_line("bio", lambda r: r.update(prompt=1)), r"bio\.jsonl: line 1: field 'prompt' must be a string or null"),
    ("duplicate id", edit_line("forget", lambda r: r.update(id="f0"), 2),
     r"forget\.jsonl: line 3: id 'f0' is already used on line 1; ids must be unique"),
]


def test_an_intact_copy_loads(saved: Path, tmp_path: Path) -> None:
    shutil.copytree(saved, tmp_path / "b")
    task = UnlearningTask.load(tmp_path / "b")
    assert task.roles == {"options": ["quiz"]} and task.split("quiz")[0].answer == 1


@pytest.mark.parametrize(("damage", "message"), [d[1:] for d in DAMAGE], ids=[d[0] for d in DAMAGE])
def test_a_damaged_copy_fails_with_a_data_error(
    saved: Path, tmp_path: Path, damage: Callable[[Path], None], message: str
) -> None:
    folder = tmp_path / "b"
    shutil.copytree(saved, folder)
    damage(folder)
    with pytest.raises(DataError, match=message) as info:
        UnlearningTask.load(folder)
    assert "obliviate prepare" in str(info.value)  # every message says how to fix it
