"""Benchmark specs: one builder shape, plans and split roles owned by the benchmark, model defaults."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from obliviate.benchmarks import BENCHMARKS
from obliviate.benchmarks.fictional import build_fictional
from obliviate.benchmarks.spec import BenchmarkSpec, benchmark_spec, spec_of
from obliviate.data.records import MCQ, QA
from obliviate.data.task import DEFAULT_ROLES, ROLES, UnlearningTask
from obliviate.errors import ConfigError, DataError
from obliviate.evaluation import plan_keys
from obliviate.runs.prepare import PrepareConfig, benchmark_defaults, prepare_config

SMALL = {"n_people": 6, "n_world": 4}


@pytest.fixture(scope="module")
def task() -> UnlearningTask:
    return build_fictional(**SMALL)


@pytest.mark.parametrize("name", BENCHMARKS.names())
def test_every_benchmark_is_a_spec_with_a_known_plan_and_roles(name: str) -> None:
    from obliviate.metrics import METRICS

    spec = benchmark_spec(name)
    assert isinstance(spec, BenchmarkSpec) and spec.name == name
    assert spec.help == BENCHMARKS.help(name)  # the lazy registry line and the spec agree
    assert set(spec.roles) <= set(ROLES)
    for key in spec.plan:
        METRICS.canonical(key.rpartition("/")[2])  # every plan entry names a registered metric
    assert all(p in spec.options() for p in ("forget",) if name != "muse")


def test_listing_benchmarks_imports_no_torch() -> None:
    code = (
        "import sys; from obliviate.cli.ls import registry_for; r = registry_for('benchmarks'); "
        "[r.help(n) for n in r]; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_spec_builds_checks_and_coerces_options() -> None:
    spec = benchmark_spec("fictional")
    assert spec(**SMALL) == spec.build(n_people="6", n_world="4") == build_fictional(**SMALL)
    with pytest.raises(ConfigError, match=r"no option 'n_peple'.*Did you mean 'n_people'"):
        spec.build(n_peple=3)


def test_plan_comes_from_the_tasks_spec(task: UnlearningTask) -> None:
    name, keys = plan_keys(task, None)
    assert name == "fictional" and keys == list(benchmark_spec("fictional").plan)
    assert plan_keys(task, "tofu") == ("tofu", list(benchmark_spec("tofu").plan))
    assert plan_keys(task, ["forget/rouge"]) == ("custom", ["forget/rouge"])
    with pytest.raises(ConfigError, match=r"unknown plan 'tofuu'.*Did you mean 'tofu'"):
        plan_keys(task, "tofuu")


def test_unknown_benchmark_falls_back_to_fictional_plan_and_mcq_adds_accuracy() -> None:
    mcq = MCQ(question="q", choices=("a", "b"), answer=0, id="m0")
    task = UnlearningTask(name="x@1", forget=[], retain=[], splits={"quiz": [mcq]}, metadata={"benchmark": "nope"})
    name, keys = plan_keys(task, None)
    assert name == "fictional"
    assert keys == [*benchmark_spec("fictional").plan, "quiz/mcq_accuracy"]
    assert spec_of(task) is None


def test_roles_saved_and_read_back(task: UnlearningTask, tmp_path: Path) -> None:
    assert task.roles == {"options": ["real_authors", "world_facts"], "utility_retain": ["retain"], "privleak": ["forget"]}
    loaded = UnlearningTask.load(task.save(tmp_path / "b"))
    assert loaded.roles == task.roles and loaded.fingerprint() == task.fingerprint()
    assert json.loads((tmp_path / "b" / "task.json").read_text())["roles"] == task.roles


def test_an_old_task_json_reads_with_the_splits_its_metrics_used(task: UnlearningTask, tmp_path: Path) -> None:
    """A task.json from before roles existed gets DEFAULT_ROLES, which pick the splits the metrics
    used by name then; for a fictional task that is exactly what its spec declares."""
    from obliviate.metrics.privacy import PrivLeak
    from obliviate.metrics.utility import utility_splits

    folder = task.save(tmp_path / "b")
    meta = json.loads((folder / "task.json").read_text())
    del meta["roles"]
    (folder / "task.json").write_text(json.dumps(meta))
    old = UnlearningTask.load(folder)
    assert old.roles is None
    assert old.role("options") == task.role("options") == ["real_authors", "world_facts"]
    assert utility_splits(old) == utility_splits(task)
    assert PrivLeak(None).splits(old) == PrivLeak(None).splits(task)
    assert DEFAULT_ROLES["utility_retain"] == ["retain_perturbed"]


def test_metrics_read_roles_not_names() -> None:
    from obliviate.metrics.privacy import PrivLeak
    from obliviate.metrics.utility import utility_splits

    q = QA(question="q", answer="a", id="0")
    roles = {"options": ["trivia"], "utility_retain": ["kept"], "privleak": ["leak"]}
    task = UnlearningTask(name="x@1", forget=[q], retain=[q], splits={"kept": [q], "leak": [q]}, roles=roles)
    assert task.has_role("trivia", "options") and not task.has_role("real_authors", "options")
    assert utility_splits(task)[0] == "kept"
    assert PrivLeak().depends(task) == ["leak/mia_min_k"]
    bare = UnlearningTask(name="x@1", forget=[q], retain=[q], roles={})
    assert utility_splits(bare)[0] == "retain" and PrivLeak().depends(bare) == ["forget/mia_min_k"]


def test_roles_are_checked() -> None:
    with pytest.raises(DataError, match=r"unknown split role 'option'.*options"):
        UnlearningTask(name="x@1", forget=[], retain=[], roles={"option": ["a"]})
    with pytest.raises(DataError, match=r"unknown split role"):
        UnlearningTask(name="x@1", forget=[], retain=[]).role("nope")


def test_prepare_config_precedence(tmp_path: Path) -> None:
    cfg = prepare_config("smollm2-135m")
    assert isinstance(cfg, PrepareConfig)
    assert cfg.benchmark == {"n_people": 18} and cfg.rehearsal == 80 and cfg.freeze_layers == 15 and cfg.train.lr == 6e-4
    assert benchmark_defaults("tofu", "smollm2-135m") == {} and benchmark_defaults("fictional", "tiny") == {}
    yaml_file = tmp_path / "p.yaml"
    yaml_file.write_text("train:\n  lr: 0.002\n  epochs: 3\nbenchmark:\n  n_people: 12\n")
    cfg = prepare_config("smollm2", "fictional", {"train": {"epochs": "4"}}, yaml_file)
    assert (cfg.train.lr, cfg.train.epochs, cfg.benchmark["n_people"]) == (0.002, 4, 12)
    generic = prepare_config("some/hub-model")
    assert generic.train.lr == 1e-5 and generic.benchmark == {}
    with pytest.raises(ConfigError, match="unknown benchmark"):
        prepare_config("tiny", "fictionl")
