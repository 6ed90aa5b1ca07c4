"""The one benchmark resolver (folder or registered name), benchmark identity by content, and
the evaluation options' prompt format as a checked choice."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from obliviate.benchmarks import load_benchmark, resolve_options
from obliviate.benchmarks.fictional import build_fictional
from obliviate.config import build
from obliviate.data.task import UnlearningTask
from obliviate.errors import ConfigError, DataError
from obliviate.metrics.base import EvalOptions

SMALL = {"n_people": 6, "n_world": 2}


@pytest.fixture(scope="module")
def task() -> UnlearningTask:
    return build_fictional(**SMALL)


def test_a_registered_name_is_built_with_typed_options(task: UnlearningTask) -> None:
    built = load_benchmark("fictional", n_people="6", n_world=2)  # command-line strings are converted
    assert built == task and built.fingerprint() == task.fingerprint()
    assert built.source == "fictional" and built.source_options == {"n_people": 6, "n_world": 2}


def test_a_prepared_folder_is_loaded_and_takes_no_options(task: UnlearningTask, tmp_path: Path) -> None:
    folder = task.save(tmp_path / "benchmark")
    loaded = load_benchmark(folder)
    assert loaded == task and loaded.source == str(folder) and loaded.source_options == {}
    assert resolve_options(str(folder)) == {}
    with pytest.raises(ConfigError, match=r"--benchmark\.\* options apply to registered benchmarks; .* is a prepared folder"):
        load_benchmark(folder, n_people=6)


def test_options_are_checked_without_building() -> None:
    # Building TOFU from a folder that does not exist would fail (offline hub); checking does not.
    assert resolve_options("tofu", {"path": "/no/such/tofu", "forget": "forget05"}) == {
        "path": "/no/such/tofu", "forget": "forget05"
    }
    assert resolve_options("fictional", {"seed": "3"}) == {"seed": 3}
    with pytest.raises(ConfigError, match=r"benchmark 'fictional' has no option 'n_peple'\. Did you mean 'n_people'\?"):
        resolve_options("fictional", {"n_peple": 6})
    with pytest.raises(ConfigError, match=r"benchmark\.n_people"):
        resolve_options("fictional", {"n_people": "many"})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fictonal", r"benchmark 'fictonal' is neither a prepared benchmark folder nor a registered benchmark\. "
                     r"Did you mean 'fictional'\? Registered: fictional, muse, tofu"),
        ("prep/benchmark", r"benchmark folder prep/benchmark does not exist; prepare one with `obliviate prepare"),
        ("./nowhere", r"benchmark folder \./nowhere does not exist"),
    ],
)
def test_a_spec_that_is_neither_folder_nor_name_is_refused(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_options(spec)
    with pytest.raises(ConfigError, match=message):
        load_benchmark(spec)


def test_a_folder_without_task_json_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is not a prepared benchmark"):
        load_benchmark(tmp_path)


def test_fingerprint_is_content_identity(task: UnlearningTask, tmp_path: Path) -> None:
    fp = task.fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0  # full sha256, hex
    assert UnlearningTask.load(task.save(tmp_path / "b")).fingerprint() == fp
    assert build_fictional(**SMALL).fingerprint() == fp  # deterministic
    one_record = dataclasses.replace(task, retain=[dataclasses.replace(task.retain[0], answer="changed"), *task.retain[1:]])
    assert one_record.fingerprint() != fp
    assert dataclasses.replace(task, templates=[*task.templates, "No idea."]).fingerprint() != fp
    assert dataclasses.replace(task, name="fictional@1/other").fingerprint() != fp
    assert dataclasses.replace(task, roles={**(task.roles or {}), "options": ["real_authors"]}).fingerprint() != fp
    reordered = dataclasses.replace(task, forget=list(reversed(task.forget)))
    assert reordered.fingerprint() != fp  # records count in order


def test_a_role_edit_in_task_json_changes_the_fingerprint(task: UnlearningTask, tmp_path: Path) -> None:
    folder = task.save(tmp_path / "b")
    meta = json.loads((folder / "task.json").read_text())
    meta["roles"]["options"] = ["world_facts"]
    (folder / "task.json").write_text(json.dumps(meta))
    assert load_benchmark(folder).fingerprint() != task.fingerprint()


def test_prompt_format_is_a_checked_choice() -> None:
    assert build(EvalOptions, {"prompt_format": "plain"}, "eval").prompt_format == "plain"
    with pytest.raises(ConfigError, match=r"eval\.prompt_format: 'chatt' is not one of auto, chat, plain\. Did you mean 'chat'\?"):
        build(EvalOptions, {"prompt_format": "chatt"}, "eval")


def test_a_benchmark_without_its_required_data_path_says_how_to_get_it() -> None:
    """MUSE ships no data: the API says what is missing and how to download it (no TypeError)."""
    import obliviate as ob
    from obliviate.errors import ConfigError

    with pytest.raises(ConfigError, match=r"needs --benchmark.path.*path=\.\.\..*hf download muse-bench/MUSE-News"):
        ob.load_benchmark("muse")
