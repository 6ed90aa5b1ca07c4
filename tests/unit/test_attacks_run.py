"""``obliviate attack`` / ``ob.attack`` on the tiny model: the relearning failure, storage, resume, verdict."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

import obliviate as ob
from obliviate.attacks.verdict import judge, quantile
from obliviate.errors import ConfigError
from obliviate.models.io import save_model

KEYS = ["forget/prob", "forget/rouge"]
TINY_LR_SCALE = 15.0  # tests/unit/method_behaviour.py: the tiny model's lr is 15x a method's default
# The reference recipe's lr (1e-5) scaled for the tiny model, and fewer steps (30, not 100).
RELEARN = {"lr": 3e-4, "steps": 30}


@pytest.fixture(scope="module")
def runs(tiny_trained: Any, tiny_retain_trained: Any, tmp_path_factory: Any) -> dict[str, Path]:
    """A prepared tiny benchmark, the retain-only model's run and a ga run, both evaluated on KEYS."""
    root = tmp_path_factory.mktemp("attack")
    for role, trained in (("target", tiny_trained), ("retain", tiny_retain_trained)):
        save_model(trained.model(), trained.tokenizer, root / "prep" / role, meta={"prompt_format": "plain"})
    tiny_trained.task.save(root / "prep" / "benchmark")
    bench = root / "prep" / "benchmark"
    ob.evaluate(str(root / "prep" / "retain"), bench, out=root / "retain", plan=KEYS)
    run = ob.unlearn(str(root / "prep" / "target"), bench, "ga", train={"lr": 3e-5 * TINY_LR_SCALE},
                     out=root / "ga", progress=False)
    ob.evaluate(run.model, bench, reference=root / "retain", out=root / "ga", plan=KEYS)
    return {"root": root, "ga": root / "ga", "retain": root / "retain", "bench": bench}


def held_mean(entry: dict[str, Any], held: set[str]) -> float:
    return statistics.mean(v for i, v in zip(entry["item_ids"], entry["values"], strict=True) if i in held)


def test_relearning_brings_back_what_ga_suppressed(runs: dict[str, Path]) -> None:
    record = ob.attack(runs["ga"], "relearn", options={"relearn": RELEARN}, progress=False)
    stored = record.data["attacks"]["relearn"]
    held = set(stored["items"])
    trained_on = set(stored["unlearned_details"]["trained_on"])
    assert held and trained_on and not held & trained_on
    assert held | trained_on == set(record.data["metrics"]["forget/prob"]["item_ids"])
    # The retain-only model was attacked with the same subset.
    assert stored["reference_details"]["trained_on"] == sorted(trained_on)

    ref_run = json.loads((runs["retain"] / "run.json").read_text())
    before = held_mean(record.data["metrics"]["forget/prob"], held)
    after = held_mean(stored["unlearned"]["forget/prob"], held)
    ref_before = held_mean(ref_run["metrics"]["forget/prob"], held)
    ref_after = held_mean(stored["reference"]["forget/prob"], held)
    # Measured: ga 0.07 -> 0.39 on the held-back items, the retain-only model 0.06 -> 0.06: the
    # held-back facts were never taught again, so only a model that still holds them recovers.
    assert after - before > 0.15, (before, after)
    assert after - before > 3 * max(ref_after - ref_before, 0.02), (before, after, ref_before, ref_after)

    v = record.data["attack_verdict"]
    assert v["metric"] == "forget/prob" and v["conditions"] == ["canonical", "relearn"]
    suppressed = [i for i, it in v["items"].items() if it["verdict"] == "suppressed"]
    assert suppressed and all(v["items"][i]["recovered_by"] == ["relearn"] for i in suppressed)
    assert set(suppressed) <= held  # only the items relearning scored can be recovered by it
    assert sum(v["counts"].values()) == len(v["items"]) == len(held | trained_on)


def test_a_stored_attack_is_reused_and_other_options_are_refused(runs: dict[str, Path]) -> None:
    first = ob.attack(runs["ga"], "relearn", options={"relearn": RELEARN}, progress=False)
    again = ob.attack(runs["ga"], "relearning", options={"relearn": RELEARN}, progress=False)  # an alias
    assert again.data["attacks"]["relearn"]["seconds"] == first.data["attacks"]["relearn"]["seconds"]  # not rerun
    with pytest.raises(ConfigError, match="other options.*--overwrite"):
        ob.attack(runs["ga"], "relearn", options={"relearn": {**RELEARN, "steps": 5}}, progress=False)
    assert json.loads((runs["ga"] / "run.json").read_text())["attacks"]["relearn"]["options"]["steps"] == RELEARN["steps"]


def test_the_cli_is_the_same_call(runs: dict[str, Path], capsys: Any) -> None:
    from obliviate.cli.main import main

    argv = ["attack", "--run", str(runs["ga"]), "--attack", "relearn"] + [f"--relearn.{k}={v}" for k, v in RELEARN.items()]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "relearn: forget/prob" in out and "suppressed" in out
    assert main([*argv[:-1], "--relearn.steps", "7"]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--attack", "relearnn"], "did you mean 'relearn'"),
        (["--attack", "relearn", "--relearn.stepz", "3"], "Did you mean 'steps'"),
        (["--attack", "relearn", "--relearn.fraction", "1"], "strictly between 0 and 1"),
        (["--attack", "relearn", "--quantize.bits", "4"], "not among those to run"),
        (["--attack", "relearn", "--quantile", "1.5"], "--quantile"),
        (["--attack", "relearn", "--verdict-metric", "forget/truth_ratio"], "not among the run's per-item"),
        (["--attack", "relearn", "--reference-model", "/nonexistent/retain"], "--reference-model"),
    ],
)
def test_bad_attack_input_is_refused_before_any_model_loads(
    runs: dict[str, Path], argv: list[str], message: str, capsys: Any, monkeypatch: Any
) -> None:
    from obliviate.cli.main import main
    from obliviate.models import io

    monkeypatch.setattr(io, "load_model", lambda *a, **k: pytest.fail("a model loaded"))
    before = (runs["ga"] / "run.json").read_bytes()
    assert main(["attack", "--run", str(runs["ga"]), *argv]) == 2
    err = capsys.readouterr().err
    assert message.lower() in err.lower() and "Traceback" not in err
    assert (runs["ga"] / "run.json").read_bytes() == before


def test_a_run_without_metrics_or_folder_is_refused(tmp_path: Path, capsys: Any) -> None:
    from obliviate.cli.main import main

    assert main(["attack", "--run", str(tmp_path), "--all"]) == 2
    assert "no run.json" in capsys.readouterr().err
    (tmp_path / "run.json").write_text(json.dumps({"schema": 2, "kind": "unlearn", "status": "completed"}))
    assert main(["attack", "--run", str(tmp_path), "--all"]) == 2
    assert "holds no metrics" in capsys.readouterr().err


# --- the verdict on hand-made scores ---------------------------------------------------------------


def entry(scores: dict[str, float]) -> dict[str, Any]:
    return {"item_ids": list(scores), "values": list(scores.values())}


def test_verdict_removed_suppressed_kept_on_hand_made_scores() -> None:
    ref = entry({f"r{i}": 0.1 * i for i in range(11)})  # 0.0 .. 1.0: its 0.95 quantile is 0.95
    assert quantile(ref["values"], 0.95) == pytest.approx(0.95)
    reference = {"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0}
    canonical = entry({"a": 0.2, "b": 0.3, "c": 0.99, "d": 0.1})
    low_ref = entry({k: v for k, v in reference.items()} | {"x": 0.5})  # quantile 0.4 of (0,0,0,0,0.5)
    relearn = entry({"a": 0.9})  # only a scored (b, c and d were trained on)
    prompts = entry({"a#p": 0.1, "a#q": 0.2, "b#p": 0.1, "b#q": 0.35, "c#p": 0.1, "d#p": 0.05})
    item_of = {"a#p": "a", "a#q": "a", "b#p": "b", "b#q": "b", "c#p": "c", "d#p": "d"}
    out = judge(
        {
            "canonical": (canonical, ref, None),
            "relearn": (relearn, low_ref, None),
            "adversarial": (prompts, entry({"a#p": 0.3, "b#p": 0.3}), item_of),
        }
    )
    assert out["thresholds"]["canonical"] == pytest.approx(0.95)
    assert out["thresholds"]["relearn"] == pytest.approx(0.4)
    assert out["thresholds"]["adversarial"] == pytest.approx(0.3)
    items = out["items"]
    assert items["a"]["verdict"] == "suppressed" and items["a"]["recovered_by"] == ["relearn"]
    assert items["b"]["verdict"] == "suppressed" and items["b"]["recovered_by"] == ["adversarial"]  # any form counts
    assert items["c"]["verdict"] == "kept"
    assert items["d"]["verdict"] == "removed" and items["d"]["recovered_by"] == []
    assert out["counts"] == {"removed": 1, "suppressed": 2, "kept": 1}


def test_verdict_skips_conditions_without_reference_scores() -> None:
    out = judge({"canonical": (entry({"a": 0.5}), entry({"r": 0.9}), None), "probe": (entry({"a": 1.0}), None, None)})
    assert out["conditions"] == ["canonical"] and out["items"]["a"]["verdict"] == "removed"
    with pytest.raises(ValueError, match="canonical"):
        judge({"relearn": (entry({"a": 1.0}), entry({"a": 0.0}), None)})


# --- every registered attack, through the runner ----------------------------------------------------

CHEAP = {"relearn": {"steps": 3, "lr": 3e-4}, "few_shot": {"k": 2}}
"""Options that keep each attack quick on the tiny model (the others run with their defaults)."""


@pytest.mark.parametrize("name", ob.ATTACKS.names())
def test_every_registered_attack_runs_and_is_stored(name: str, runs: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(runs["ga"], run)
    # The shared ga run may already hold attacks the tests above stored with their own options:
    # start from its record as ob.evaluate left it, so each attack here runs with CHEAP's options.
    data = json.loads((run / "run.json").read_text())
    data.pop("attacks", None)
    data.pop("attack_verdict", None)
    (run / "run.json").write_text(json.dumps(data))
    attack = resolve(name)
    record = ob.attack(run, name, options={name: CHEAP[name]} if name in CHEAP else None, progress=False)
    stored = record.data["attacks"][attack.label]
    assert stored["attack"] == name
    for role in ("unlearned", "reference"):
        assert stored[role], f"{name}: no {role} results"
        for key, e in stored[role].items():
            assert e["values"] and len(e["values"]) == len(e["item_ids"]), (name, role, key)
    v = record.data["attack_verdict"]
    assert attack.label in v["conditions"]
    assert set(v["items"]) == set(record.data["metrics"]["forget/prob"]["item_ids"])


def resolve(name: str) -> Any:
    from obliviate.attacks.base import resolve_attack

    return resolve_attack(name, CHEAP.get(name))


def test_the_report_says_whether_it_held(runs: dict[str, Path], tmp_path: Path) -> None:
    from obliviate.reporting import make_report

    plain = make_report([runs["retain"]], tmp_path / "plain.html")["html"].read_text()
    assert 'id="holds"' not in plain and "Does it hold?" not in plain  # no attacked run: no section
    record = ob.attack(runs["ga"], "relearn", options={"relearn": RELEARN}, progress=False)
    page = make_report([runs["ga"], runs["retain"]], tmp_path / "report.html")["html"].read_text()
    assert 'id="holds"' in page and 'href="#holds"' in page
    v = record.data["attack_verdict"]
    assert f"<b>{v['counts']['suppressed']}</b> suppressed" in page
    back = [i for i, it in v["items"].items() if it["verdict"] == "suppressed"]
    assert "did not hold" in page and all(i in page for i in back)
