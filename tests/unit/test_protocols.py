"""The sequential (MUSE sustainability) and scale (MUSE scalability) protocols, on tiny."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import obliviate as ob
from obliviate.errors import ConfigError, OutputExistsError
from obliviate.runs.protocols import growing_sets, request_task, split_requests

TRAIN = {"max_steps": 2, "lr": 1e-3, "batch_size": 4}


@pytest.fixture(scope="module")
def task():
    return ob.load_benchmark("fictional", n_people=30)  # 3 forget people


def weights(path: Path) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in ob.load_model(path).model.state_dict().items()}


def test_requests_deal_whole_subjects_into_disjoint_groups(task):
    reqs = split_requests(task, 3, seed=0)
    assert [r.name for r in reqs] == ["request-1", "request-2", "request-3"]
    ids = [r.id for req in reqs for r in req.forget]
    assert sorted(ids) == sorted(q.id for q in task.forget)  # disjoint and complete
    for req in reqs:
        assert len(req.subjects) == 1 and {q.subject for q in req.forget} == set(req.subjects)
    assert [r.subjects for r in split_requests(task, 3, seed=0)] == [r.subjects for r in reqs]  # seeded
    sub = request_task(task, reqs[0])
    assert sub.name == f"{task.name}+request-1" and sub.source == "" and sub.retain == task.retain
    with pytest.raises(ConfigError, match="at least 4 subjects"):
        split_requests(task, 4)
    with pytest.raises(ConfigError):
        split_requests(task, 0)
    with pytest.raises(ConfigError, match="no split 'sust_forget_1'"):
        split_requests(task, ["sust_forget_1"])


def test_growing_sets_are_nested_and_strictly_growing(task):
    sets = growing_sets(task, [1, 3], seed=1)
    assert [len(s.subjects) for s in sets] == [1, 3] and sets[0].subjects == sets[1].subjects[:1]
    assert {q.id for q in sets[0].forget} < {q.id for q in sets[1].forget}
    assert [len(s.subjects) for s in growing_sets(task, [0.34, 1.0])] == [1, 3]
    for bad in ([2, 2], [3, 1], [0], [5], [1.5], ["x"]):
        with pytest.raises(ConfigError):
            growing_sets(task, bad)


def test_sequential_chains_each_request_from_the_previous_model(tmp_path, task):
    out = tmp_path / "seq"
    proto = ob.sequential("tiny", task, "ga", requests=3, options={"train": TRAIN}, metrics="forget/prob", out=out, progress=False)
    record = json.loads((out / "protocol.json").read_text())
    assert record["status"] == "completed" and record["protocol"] == "sequential"
    assert [s["name"] for s in record["steps"]] == ["request-1", "request-2", "request-3"]
    runs = [json.loads((out / f"request-{i}" / "run.json").read_text()) for i in (1, 2, 3)]
    assert runs[0]["config"]["model"] == "tiny"
    assert runs[1]["config"]["model"] == str(out / "request-1" / "model")
    assert runs[2]["config"]["model"] == str(out / "request-2" / "model")
    assert runs[1]["config"]["benchmark"] == f"{task.name}+request-2"
    for i, step in enumerate(proto.steps):  # every step is evaluated on the whole forget split
        assert len(step.results.per_item("forget/prob")) == len(task.forget)
        sub = record["steps"][i]["forget_subsets"]["forget/prob"]
        assert sub["unlearned"] is not None and sub["rest"] is not None
    # request 2 from request 1's saved model, unlearned again alone, gives request 2's weights exactly
    again = ob.unlearn(ob.load_model(out / "request-1" / "model"), request_task(task, proto.steps[1].request), "ga",
                       train=TRAIN, progress=False)
    saved = weights(out / "request-2" / "model")
    assert all(torch.equal(v, saved[k]) for k, v in again.model.model.state_dict().items())
    first = weights(out / "request-1" / "model")
    assert any(not torch.equal(v, first[k]) for k, v in saved.items())

    # resume: the finished steps are read back, nothing trains
    resumed = ob.sequential("tiny", task, "ga", requests=3, options={"train": TRAIN}, metrics="forget/prob", out=out,
                            resume=True, progress=False)
    assert all(s.run.result is None for s in resumed.steps)
    assert [s["aggregates"] for s in resumed.record["steps"]] == [s["aggregates"] for s in record["steps"]]
    with pytest.raises(ConfigError, match="resume only continues the same protocol"):
        ob.sequential("tiny", task, "ga", requests=3, options={"train": {**TRAIN, "lr": 2e-3}}, metrics="forget/prob",
                      out=out, resume=True, progress=False)
    with pytest.raises(OutputExistsError):
        ob.sequential("tiny", task, "ga", requests=3, options={"train": TRAIN}, out=out, progress=False)


def test_scale_unlearns_each_size_from_the_original_model(tmp_path, task):
    out = tmp_path / "scale"
    proto = ob.scale("tiny", task, "ga", sizes=[1, 3], options={"train": TRAIN}, metrics="forget/prob", out=out, progress=False)
    assert [s.request.name for s in proto.steps] == ["size-1", "size-3"]
    for name in ("size-1", "size-3"):
        assert json.loads((out / name / "run.json").read_text())["config"]["model"] == "tiny"
    rows = proto.table()
    assert [r["items"] for r in rows] == [len(proto.steps[0].request.forget), len(task.forget)]
    assert rows[1]["forget_subsets"]["forget/prob"]["rest"] is None  # everything was unlearned

    # the command line writes the same protocol
    from obliviate.cli.main import main

    argv = ["protocol", "scale", "--model", "tiny", "--benchmark", "fictional", "--benchmark.n_people", "30",
            "--method", "ga", "--sizes", "1,3", "--train.max_steps", "2", "--train.lr", "1e-3", "--train.batch_size", "4",
            "--metrics", "forget/prob", "--out", str(tmp_path / "cli")]
    assert main(argv) == 0
    cli = json.loads((tmp_path / "cli" / "protocol.json").read_text())
    assert cli["digest"] == proto.record["digest"]
    assert [s["aggregates"] for s in cli["steps"]] == [s["aggregates"] for s in proto.record["steps"]]
    assert main([*argv[:-1], str(tmp_path / "cli2"), "--sizes", "1,x"]) == 2  # a clear error, no traceback


def test_protocols_check_everything_before_training(tmp_path, task, monkeypatch):
    import obliviate.runs.unlearn as unlearn_mod

    def boom(*a, **k):
        raise AssertionError("trained before the options were checked")

    monkeypatch.setattr(unlearn_mod, "run_unlearn", boom)
    with pytest.raises(ConfigError):
        ob.sequential("tiny", task, "ga", options={"train": {"lr": -1}}, progress=False)
    with pytest.raises(ConfigError):
        ob.sequential("tiny", task, "nope", progress=False)
    with pytest.raises(ConfigError):
        ob.scale("tiny", task, "ga", eval={"max_itemz": 3}, progress=False)
    with pytest.raises(ConfigError):
        ob.scale("tiny", task, "ga", metrics="forget/nonsense", progress=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="not a folder obliviate wrote"):
        ob.scale("tiny", task, "ga", out=tmp_path / "mine", overwrite=True, progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_sequential_on_muses_own_request_splits(tmp_path):
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "muse" / "news"
    muse = ob.load_benchmark("muse", path=str(fixture))
    proto = ob.sequential("tiny", muse, "ga", requests=["sust_forget_1", "sust_forget_2"], options={"train": TRAIN},
                          metrics="verbmem_forget/verbmem", out=tmp_path / "sust", progress=False)
    steps = proto.record["steps"]
    assert [s["split"] for s in steps] == ["sust_forget_1", "sust_forget_2"]
    assert "forget_subsets" not in steps[0]  # MUSE evaluates fixed probes, not the request's own texts
    second = json.loads((tmp_path / "sust" / "request-2" / "run.json").read_text())
    assert second["config"]["model"] == str(tmp_path / "sust" / "request-1" / "model")
    assert proto.steps[1].run.plan.task.forget == muse.splits["sust_forget_2"]
