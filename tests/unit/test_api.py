"""The Python API: the README's example as written, equal to the CLI; copies, defaults, formats, laziness."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import obliviate as ob
from obliviate.cli.main import main
from obliviate.errors import ConfigError

README = Path(__file__).resolve().parents[2] / "README.md"

# Keys of run.json that differ between two identical runs (clocks, the command line, where the
# evaluated model was named from).
VOLATILE = {"timings", "started_at", "finished_at", "argv"}


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"```python\n(import obliviate as ob\n.*?)```", text, re.S)
    assert match, "the README lost its Python example"
    return match.group(1)


def comparable(data: dict[str, Any]) -> dict[str, Any]:
    """run.json without what legitimately differs between two identical runs."""
    out = {k: v for k, v in data.items() if k not in VOLATILE}
    out["train"] = {k: v for k, v in out["train"].items() if k != "seconds"}
    out["eval"] = {k: v for k, v in out["eval"].items() if k not in ("seconds", "model")}
    out["eval"]["identity"] = {k: v for k, v in out["eval"]["identity"].items() if k != "model"}  # two folders
    return out


@pytest.fixture()
def prepared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``prep/target`` and ``prep/retain`` (tiny models) and the retain-only run ``runs/retain``, in the cwd."""
    from obliviate.models.io import save_model

    monkeypatch.chdir(tmp_path)
    for role in ("target", "retain"):
        lm = ob.load_model("tiny")
        save_model(lm.model, lm.tokenizer, Path("prep") / role)
    ob.evaluate("prep/retain", ob.load_benchmark("fictional", n_people=18), out="runs/retain")
    return tmp_path


def test_readme_example_runs_as_written_and_equals_the_cli(prepared: Path) -> None:
    scope: dict[str, Any] = {}
    exec(compile(readme_example(), str(README), "exec"), scope)  # noqa: S102 (the README's own code)
    res = scope["res"]
    assert 0.0 <= res["forget_quality"] <= 1.0
    assert len(res.per_item("forget/rouge")) == 20  # 2 forget people x 10 facts
    assert Path("report.html").is_file()

    args = ["--benchmark", "fictional", "--benchmark.n_people", "18"]
    assert main(["unlearn", "--model", "prep/target", *args, "--method", "npo", "--method.beta", "0.1",
                 "--train.lr", "1e-4", "--out", "runs/cli"]) == 0
    assert main(["eval", "--model", "runs/cli/model", *args, "--reference", "runs/retain", "--out", "runs/cli"]) == 0
    api = json.loads(Path("runs/npo/run.json").read_text())
    cli = json.loads(Path("runs/cli/run.json").read_text())
    assert api["schema"] == cli["schema"] == 2
    # the relative reference is recorded absolute: the record still finds it from another directory
    assert api["eval"]["reference"] == cli["eval"]["reference"] == str(prepared / "runs" / "retain")
    assert api["config"]["train"]["epochs"] == 5.0  # NPO's train_defaults under the caller's lr
    assert api["config"]["train"]["lr"] == 1e-4 and api["config"]["method"]["beta"] == 0.1
    assert api["model"]["output"].endswith("runs/npo/model") and cli["model"]["output"].endswith("runs/cli/model")
    for record in (api, cli):
        record["model"].pop("output")
    api_metrics, cli_metrics = api.pop("metrics"), cli.pop("metrics")
    assert comparable(api) == comparable(cli)
    assert api_metrics.keys() == cli_metrics.keys()
    for key, entry in api_metrics.items():
        a, c = entry["aggregate"], cli_metrics[key]["aggregate"]
        assert (a is None and c is None) or a == pytest.approx(c, rel=1e-6, abs=1e-9), key


def test_unlearn_copies_the_callers_model_unless_in_place() -> None:
    import torch

    task = ob.load_benchmark("fictional", n_people=6, n_world=2)
    model = ob.load_model("tiny")
    before = {k: v.clone() for k, v in model.model.state_dict().items()}
    run = ob.unlearn(model, task, "ga", train={"max_steps": 2, "lr": 1e-3}, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.model.state_dict().items())
    moved = max(float((before[k] - v).abs().max()) for k, v in run.model.model.state_dict().items())
    assert moved > 0
    assert run.record.path is None and run.record.train["extra"] == {}
    assert run.status == "completed" and run.record.config["train"]["max_steps"] == 2
    ob.unlearn(model, task, "ga", train={"max_steps": 2, "lr": 1e-3}, in_place=True, progress=False)
    assert any(not torch.equal(before[k], v) for k, v in model.model.state_dict().items())


def test_unlearn_uses_the_prompt_format_the_model_records() -> None:
    """A model fine-tuned in the plain format is unlearned in it, although its tokenizer has a chat template."""
    task = ob.load_benchmark("fictional", n_people=6, n_world=2)
    model = ob.load_model("tiny")
    model.tokenizer.chat_template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
    chat = ob.unlearn(model, task, "ga", train={"max_steps": 1}, progress=False)
    assert chat.record.data["prompt_format"] == "chat"
    model.meta = {"prompt_format": "plain"}
    plain = ob.unlearn(model, task, "ga", train={"max_steps": 1}, progress=False)
    assert plain.record.data["prompt_format"] == "plain"
    assert plain.model.meta["prompt_format"] == "plain"


def test_every_call_checks_its_options_before_a_model_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_loading(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr("obliviate.models.io.load_model", no_loading)
    with pytest.raises(ConfigError, match="Did you mean 'beta'"):
        ob.unlearn("tiny", "fictional", "npo", method={"bta": 0.1}, out=tmp_path / "a")
    with pytest.raises(ConfigError, match="train.lr"):
        ob.unlearn("tiny", "fictional", "npo", train={"lr": -1.0})
    with pytest.raises(ConfigError, match="n_peple"):
        ob.unlearn("tiny", "fictional", "npo", benchmark={"n_peple": 6})
    with pytest.raises(ConfigError, match="Did you mean 'mia_min_k'"):
        ob.evaluate("tiny", "fictional", metrics="mia_min_kk")
    with pytest.raises(ConfigError, match="unknown option 'eval.k_'"):
        ob.evaluate("tiny", "fictional", options={"k_": 0.2})
    assert not (tmp_path / "a").exists()


def test_the_api_refuses_values_of_the_wrong_type_with_its_own_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    def no_loading(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr("obliviate.models.io.load_model", no_loading)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="registered method's name such as 'npo', not 5"):
        ob.unlearn("tiny", "fictional", 5)
    with pytest.raises(ConfigError, match="not Linear"):
        ob.unlearn(torch.nn.Linear(2, 2), "fictional", "npo")
    with pytest.raises(ConfigError, match="not int"):
        ob.unlearn("tiny", 7, "npo")
    with pytest.raises(ConfigError, match="sizes is a number or a list .* not the string '1,2'"):
        ob.scale("tiny", "fictional", "npo", sizes="1,2")
    with pytest.raises(ob.DataError, match="is a file, not a run folder"):
        ob.load_run(tmp_path / "notes.txt")
    with pytest.raises(ob.DataError, match="nope/run.json does not exist"):
        ob.report(str(tmp_path / "nope"), out=tmp_path / "r.html")


def test_eval_refuses_to_write_into_its_inputs(tmp_path: Path) -> None:
    from obliviate.errors import OutputExistsError
    from obliviate.models.io import save_model

    lm = ob.load_model("tiny")
    save_model(lm.model, lm.tokenizer, tmp_path / "m")
    task = ob.load_benchmark("fictional", n_people=6, n_world=2)
    task.save(tmp_path / "bench")
    for out in (tmp_path / "m", tmp_path / "bench", tmp_path / "bench" / "x"):
        with pytest.raises(OutputExistsError, match="never writes into its inputs"):
            ob.evaluate(tmp_path / "m", tmp_path / "bench", out=out, metrics="forget/prob")
    assert not (tmp_path / "m" / "run.json").exists() and not (tmp_path / "bench" / "run.json").exists()


def test_eval_resumes_only_the_same_model_benchmark_and_options(tmp_path: Path) -> None:
    """Metrics of one model are never reused (and relabelled) for another evaluated into the same folder."""
    from obliviate.models.io import save_model

    for name in ("a", "b"):
        lm = ob.load_model("tiny")
        save_model(lm.model, lm.tokenizer, tmp_path / name)
    task = ob.load_benchmark("fictional", n_people=6, n_world=2)
    out = tmp_path / "run"
    first = ob.evaluate(tmp_path / "a", task, out=out, metrics="forget/prob")
    again = ob.evaluate(tmp_path / "a", task, out=out, metrics="forget/prob")  # same model: resumed
    assert again["forget/prob"] == first["forget/prob"]
    with pytest.raises(ConfigError, match="another model"):
        ob.evaluate(tmp_path / "b", task, out=out, metrics="forget/prob")
    with pytest.raises(ConfigError, match="other evaluation options"):
        ob.evaluate(tmp_path / "a", task, out=out, metrics="forget/prob", options={"max_items": 2})
    other = ob.load_benchmark("fictional", n_people=6, n_world=2, seed=7)
    with pytest.raises(ConfigError, match="another benchmark"):
        ob.evaluate(tmp_path / "a", other, out=out, metrics="forget/prob")
    assert ob.load_run(out).data["eval"]["model"].endswith("a")  # nothing was relabelled
    ob.evaluate(tmp_path / "b", task, out=out, metrics="forget/prob", overwrite=True)
    assert ob.load_run(out).data["eval"]["model"].endswith("b")


def test_a_reference_of_another_benchmark_content_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fictional task is named fictional@1/forget10; the reference check compares content."""
    task = ob.load_benchmark("fictional", n_people=6, n_world=2)
    ob.evaluate("tiny", task, out=tmp_path / "retain", metrics="forget/truth_ratio")
    other = ob.load_benchmark("fictional", n_people=6, n_world=2, seed=7)
    assert other.name == task.name and other.fingerprint() != task.fingerprint()

    def no_loading(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a model was loaded before the reference was checked")

    monkeypatch.setattr("obliviate.models.io.load_model", no_loading)
    with pytest.raises(ConfigError, match="another benchmark"):
        ob.evaluate("tiny", other, reference=tmp_path / "retain", metrics="forget_quality")


def test_the_package_imports_no_torch_until_asked() -> None:
    code = (
        "import sys, obliviate as ob; assert 'torch' not in sys.modules, 'import obliviate loaded torch'; "
        "assert callable(ob.unlearn) and callable(ob.evaluate) and callable(ob.load_benchmark); "
        "print(set(dir(ob)) >= {'unlearn', 'evaluate', 'report', 'load_model', 'load_run'})"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    with pytest.raises(AttributeError, match="no attribute 'unlern'"):
        ob.unlern  # noqa: B018


def test_a_run_record_of_schema_1_still_loads(tmp_path: Path) -> None:
    """Files written before run.json had a schema version read as the current schema."""
    old = {"kind": "unlearn", "status": "completed", "config": {"method": {"name": "npo", "beta": 0.1}},
           "train": {"steps": 3, "log": [{"step": 1, "loss": 0.5}]},
           "metrics": {"forget/rouge": {"aggregate": None, "values": [0.5, None], "item_ids": ["a", "b"]}}}
    (tmp_path / "run.json").write_text(json.dumps(old))
    record = ob.load_run(tmp_path)
    assert record.schema == 2 and record.method == "npo" and record.status == "completed"
    assert record["forget/rouge"] is None and record.aggregate("forget/rouge") is None
    assert record.per_item("forget/rouge") == {"a": 0.5, "b": None}
    assert record.train_log == [{"step": 1, "loss": 0.5}]
    eval_only = {"metrics": {"forget/prob": {"aggregate": 0.25, "values": [0.25], "item_ids": ["a"]}}}
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "run.json").write_text(json.dumps(eval_only))
    assert ob.load_run(tmp_path / "e").kind == "eval"
    assert math.isclose(ob.load_run(tmp_path / "e")["forget/prob"], 0.25)
    (tmp_path / "n").mkdir()
    (tmp_path / "n" / "run.json").write_text(json.dumps({"schema": 99}))
    with pytest.raises(ob.DataError, match="newer than this obliviate reads"):
        ob.load_run(tmp_path / "n")


def test_the_run_record_keeps_what_a_method_computed() -> None:
    """RMU's resolved steering coefficient (steering_scale x the forget activations' norm) is recorded."""
    task = ob.load_benchmark("fictional", n_people=6, n_world=2)
    run = ob.unlearn(ob.load_model("tiny"), task, "rmu", train={"max_steps": 1}, progress=False)
    coeff = run.record.train["extra"]["rmu_steering_coeff"]
    assert isinstance(coeff, float) and coeff > 0
    assert run.record.data["benchmark"]["fingerprint"] == task.fingerprint()


def test_the_precision_is_settable_and_recorded(tmp_path: Path) -> None:
    task = ob.load_benchmark("fictional", n_people=6, n_world=2)
    fp32 = ob.evaluate("tiny", task, out=tmp_path / "fp32", metrics="forget/prob,forget/mia_gradnorm",
                       options={"precision": "fp32", "gradnorm_items": 2})
    bf16 = ob.evaluate("tiny", task, metrics="forget/prob", options={"precision": "bf16"})
    assert fp32.data["eval"]["precision"] == "fp32" and bf16.data["eval"]["precision"] == "bf16"
    auto = ob.evaluate("tiny", task, metrics="forget/prob")
    assert auto.data["eval"]["precision"] in ("fp32", "bf16")  # what this machine's hardware chose
    with pytest.raises(ConfigError, match="is not one of auto, bf16, fp32"):
        ob.evaluate("tiny", task, metrics="forget/prob", options={"precision": "fp16"})
    page = ob.report([tmp_path / "fp32"], out=tmp_path / "r.html")["html"].read_text(encoding="utf-8")
    assert "evaluated in fp32" in page


def test_an_official_benchmark_evaluates_with_its_official_settings() -> None:
    """TOFU generates 200 new tokens (its code and open-unlearning's); the caller's setting still wins."""
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "tofu"
    task = ob.load_benchmark("tofu", path=str(fixture), forget="forget01")
    official = ob.evaluate("tiny", task, metrics="forget/prob")
    assert official.data["eval"]["options"]["max_new_tokens"] == 200
    mine = ob.evaluate("tiny", task, metrics="forget/prob", options={"max_new_tokens": 8})
    assert mine.data["eval"]["options"]["max_new_tokens"] == 8
    fictional = ob.evaluate("tiny", ob.load_benchmark("fictional", n_people=6, n_world=2), metrics="forget/prob")
    assert fictional.data["eval"]["options"]["max_new_tokens"] == 64


def test_the_api_functions_survive_the_import_of_every_submodule() -> None:
    """No submodule is named like a public function, so importing one never shadows the function."""
    import importlib
    import pkgutil

    src = Path(ob.__file__).parent
    modules = {m.name for m in pkgutil.iter_modules([str(src)])}
    assert not modules & set(ob.__all__), "a submodule repeats the name of a public function"
    for name in sorted(modules - {"__main__"}):
        importlib.import_module(f"obliviate.{name}")
    for name in ("report", "prepare", "demo", "evaluate", "unlearn", "attack"):
        assert callable(getattr(ob, name)) and not isinstance(getattr(ob, name), type(ob)), name


def test_uncapped_splits_stay_whole_under_max_items() -> None:
    """The demo's fast profile caps every split at 20 items but scores every real-author question."""
    task = ob.load_benchmark("fictional", n_people=6, n_world=5)
    capped = ob.evaluate("tiny", task, metrics="real_authors/prob,retain/prob", options={"max_items": 2, "precision": "fp32"})
    whole = ob.evaluate(
        "tiny", task, metrics="real_authors/prob,retain/prob",
        options={"max_items": 2, "uncapped": "real_authors", "precision": "fp32"},
    )
    def items(record: Any, key: str) -> list[str]:
        return record.data["metrics"][key]["item_ids"]

    assert len(items(capped, "real_authors/prob")) == 2 and len(items(whole, "real_authors/prob")) == 5
    assert whole["retain/prob"] == capped["retain/prob"] and len(items(whole, "retain/prob")) == 2
    with pytest.raises(ConfigError, match="eval.uncapped names real_autors, not a split"):
        ob.evaluate("tiny", task, metrics="retain/prob", options={"max_items": 2, "uncapped": "real_autors"})
