"""`obliviate demo` end to end on the tiny model: prepare, evaluate, unlearn, table, report; then warm."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from obliviate.cli.main import main


def test_demo_cold_then_warm_on_tiny(tmp_path, monkeypatch, capsys, two_threads):
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    assert main(["demo", "--model", "tiny", "--methods", "grad_diff", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "preparing the benchmark" in printed and "FQ ↑" in printed and "grad_diff" in printed
    for name in ("report.html", "report.json", "report.csv", "demo-timings.json"):
        assert (out / name).is_file(), name
    rows = (out / "report.csv").read_text(encoding="utf-8")
    assert "target" in rows and "retain" in rows and "grad_diff" in rows
    runs = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert runs  # the results of every model, machine-readable
    gd = json.loads((out / "runs" / "grad_diff" / "run.json").read_text(encoding="utf-8"))
    assert {"forget_quality", "model_utility", "forget/rouge", "privleak"} <= set(gd["metrics"])
    # Warm: the prepared models and the evaluations of target and retain-only model are reused.
    out2 = tmp_path / "demo2"
    import obliviate.models.io as io

    loaded, load = [], io.load_model
    monkeypatch.setattr(io, "load_model", lambda spec, *a, **k: loaded.append(Path(spec).name) or load(spec, *a, **k))
    assert main(["demo", "--model", "tiny", "--methods", "grad_diff", "--out", str(out2)]) == 0
    assert loaded == ["target"]  # only to unlearn it: the cached evaluations need no model
    printed = capsys.readouterr().out
    assert "using the prepared models cached" in printed and "preparing the benchmark" not in printed
    timings = json.loads((out2 / "demo-timings.json").read_text(encoding="utf-8"))
    assert timings["prepare"] < 30
    # A typo in a method name fails before anything runs, with a suggestion.
    assert main(["demo", "--model", "tiny", "--methods", "grad_dif", "--out", str(tmp_path / "x")]) == 2
    assert "Did you mean 'grad_diff'" in capsys.readouterr().err


def test_demo_settings_of_a_method_give_way_to_the_users():
    from obliviate.runs.demo import DemoConfig

    cfg = DemoConfig()
    assert cfg.unlearn_options("simnpo") == {"method": {"c_npo": 1.0}, "train": {"epochs": 2, "lr": 3e-4}}
    mine = DemoConfig(method_options={"simnpo": {"c_npo": 0.125, "train": {"lr": 1e-5}}})
    assert mine.unlearn_options("simnpo") == {"method": {"c_npo": 0.125}, "train": {"epochs": 2, "lr": 1e-5}}
    assert DemoConfig().unlearn_options("rmu") == {}  # a method without demo settings runs its own defaults


def test_demo_checks_method_options_before_preparing(tmp_path, monkeypatch, capsys):
    """A typo in a method's option fails at once, before the benchmark or any model is prepared."""
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))

    def no_prepare(*a, **k):
        raise AssertionError("prepared before the options were checked")

    monkeypatch.setattr(importlib.import_module("obliviate.runs.prepare"), "prepare", no_prepare)
    assert main(["demo", "--model", "tiny", "--methods", "npo", "--npo.bta", "0.1", "--out", str(tmp_path / "d")]) == 2
    assert "did you mean 'beta'" in capsys.readouterr().err.lower()
    assert main(["demo", "--model", "tiny", "--methods", "npo", "--npo.train.lr", "-1", "--out", str(tmp_path / "d")]) == 2
    assert "train.lr" in capsys.readouterr().err


def test_stage_messages_say_how_long_is_left(monkeypatch):
    """Estimates come from the last run, else from the stages of the same kind done in this run."""
    demo = importlib.import_module("obliviate.runs.demo")

    clock = {"t": 0.0}
    monkeypatch.setattr(demo.time, "perf_counter", lambda: clock["t"])
    said: list[str] = []
    names = ["eval_retain", "unlearn_a", "eval_a", "unlearn_b", "eval_b", "report"]
    stages = demo.Stages(said.append, names, {"report": 1.0})
    stages.expect("eval_retain", 0.0)  # cached
    for name, seconds in zip(names, (0.2, 30, 20, 30, 20, 1)):
        stages.start(name, name)
        clock["t"] += seconds
    stages.finish()
    assert said[0] == "[bold cyan]»[/] 1/6 eval_retain"  # nothing yet tells how long unlearning takes
    assert "about" not in said[2]  # eval_a: the eval of a method is not known before one ran
    assert said[3].endswith("4/6 unlearn_b [dim](about 0:51 left)[/]")  # 30 + 20 + 1
    assert stages.measured["unlearn_b"] == 30
    # The next run knows every stage from the first one on.
    again: list[str] = []
    demo.Stages(again.append, names, stages.measured).start("eval_retain", "eval_retain")
    assert again[0].endswith("(about 1:41 left)[/]")  # 0.2 + 30 + 20 + 30 + 20 + 1
