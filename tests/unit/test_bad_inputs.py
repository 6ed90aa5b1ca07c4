"""A corpus of ordinary mistakes: each exits with code 2 and a message that names what is wrong and how
to fix it, before any model loads, and changes nothing outside the command's --out.

Every case runs the command line in process (``obliviate.cli.main.main``) inside a workspace that
holds a model folder, a prepared benchmark, an evaluated run and a user's own files; a checksum of
the workspace before and after proves that nothing the user owns was touched.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from obliviate.cli.main import main

TINY_BENCH = ["--benchmark.n_people", "6", "--benchmark.n_world", "2"]


def unlearn(*extra: str, model: str = "tiny", bench: str = "fictional", method: str = "npo", out: str = "{out}") -> list[str]:
    opts = TINY_BENCH if bench == "fictional" else []
    return ["unlearn", "--model", model, "--benchmark", bench, *opts, "--method", method, "--out", out, *extra]


def evaluate(*extra: str, model: str = "{ws}/m", bench: str = "{ws}/bench", out: str = "{out}") -> list[str]:
    return ["eval", "--model", model, "--benchmark", bench, "--out", out, *extra]


def prepare(*extra: str, out: str = "{out}") -> list[str]:
    return ["prepare", "--model", "tiny", "--out", out, *TINY_BENCH, *extra]


def protocol(kind: str, *extra: str, out: str = "{out}") -> list[str]:
    return ["protocol", kind, "--model", "tiny", "--benchmark", "fictional", *TINY_BENCH, "--method", "npo", "--out", out, *extra]


def demo(*extra: str) -> list[str]:
    return ["demo", "--model", "tiny", "--out", "{out}", *extra]


CASES: list[tuple[str, list[str], str]] = [
    # unlearn: the method and its options
    ("unknown method", unlearn(method="npoo"), r"unknown method 'npoo'.*Did you mean 'npo'"),
    ("method option typo", unlearn("--method.bta", "0.1"), r"Did you mean 'beta'"),
    ("method option wrong type", unlearn("--method.beta", "high"), r"method.beta: expected a number"),
    ("method group given a value", unlearn("--method", "npo", "--method.beta.x", "1"), r"method.beta"),
    ("option of a method that has none", unlearn("--method.bta", "0.1", method="ga"),
     r"'method.bta': method ga takes no options of its own; remove --method.bta"),
    # unlearn: training options
    ("lr infinite", unlearn("--train.lr", "inf"), r"train.lr must be a finite number"),
    ("lr not a number", unlearn("--train.lr", "fast"), r"train.lr: expected a number"),
    ("lr negative", unlearn("--train.lr", "-1e-4"),
     r"train.lr must be a finite number greater than 0, got -0.0001"),
    ("lr zero", unlearn("--train.lr", "0"),
     r"train.lr must be a finite number greater than 0, got 0"),
    ("lr without a value", unlearn("--train.lr"), r"train.lr: expected a number"),
    ("train group given a value", unlearn("--train", "5"), r"train is a group of options"),
    ("max_length zero", unlearn("--train.max_length", "0"), r"train.max_length must be at least 1"),
    ("batch size zero", unlearn("--train.batch_size", "0"), r"train.batch_size must be at least 1"),
    ("epochs negative", unlearn("--train.epochs", "-1"), r"train.epochs"),
    ("no epochs and no steps", unlearn("--train.epochs", "0"), r"train.epochs > 0 or train.max_steps"),
    ("save_every negative", unlearn("--train.save_every", "-2"), r"train.save_every must be 0 or more"),
    ("weight decay infinite", unlearn("--train.weight_decay", "inf"), r"train.weight_decay"),
    ("schedule typo", unlearn("--train.schedule", "cosin"), r"train.schedule"),
    ("bf16 setting", unlearn("--train.bf16", "maybe"), r"train.bf16"),
    ("unknown train option", unlearn("--train.learning_rate", "1e-4"), r"unknown option 'train.learning_rate'"),
    # unlearn: lora and stop
    ("lora option typo", unlearn("--lora.enabled", "true", "--lora.alhpa", "4"), r"Did you mean 'alpha'"),
    ("lora rank zero", unlearn("--lora.enabled", "true", "--lora.r", "0"), r"lora.r must be at least 1"),
    ("lora dropout above one", unlearn("--lora.enabled", "true", "--lora.dropout", "2"), r"lora.dropout is a probability"),
    ("lora alpha zero", unlearn("--lora.enabled", "true", "--lora.alpha", "0"), r"lora.alpha must be positive"),
    ("fila without retain data", unlearn("--lora.enabled", "true", "--lora.init", "fila", method="ga"),
     r"fila needs forget/retain pairs"),
    ("fila saved as adapter", unlearn("--lora.enabled", "true", "--lora.init", "fila", "--lora.save", "adapter"),
     r"fila rewrites the base weights"),
    ("stop threshold negative", unlearn("--stop.forget_loss_above", "-1"), r"stop.forget_loss_above"),
    ("unknown option group", unlearn("--optim.lr", "1"), r"unknown option 'optim'"),
    ("stray argument", unlearn("oops"), r"unexpected argument 'oops'"),
    # unlearn: model, benchmark, output, config file
    ("model neither folder nor name", unlearn(model="no/such/model"), r"neither an existing folder"),
    ("model folder without config", unlearn(model="{ws}/empty"), r"holds no config.json"),
    ("model is a file", unlearn(model="{ws}/notes.txt"), r"neither an existing folder"),
    ("benchmark folder missing", unlearn(bench="{ws}/nope"), r"does not exist; prepare one"),
    ("benchmark name typo", ["unlearn", "--model", "tiny", "--benchmark", "fictionl", "--method", "npo", "--out", "{out}"],
     r"Did you mean 'fictional'"),
    ("benchmark option typo", unlearn("--benchmark.n_peple", "6"), r"Did you mean 'n_people'"),
    ("benchmark options on a folder", unlearn("--benchmark.seed", "3", bench="{ws}/bench"), r"apply to registered benchmarks"),
    ("benchmark folder without task.json", unlearn(bench="{ws}/empty"), r"not a prepared benchmark"),
    ("out is the model folder", unlearn(model="{ws}/m", out="{ws}/m"), r"never writes"),
    ("out inside the model folder", unlearn(model="{ws}/m", out="{ws}/m/run"), r"never writes"),
    ("out is the benchmark folder", unlearn(bench="{ws}/bench", out="{ws}/bench"), r"never writes"),
    ("out already holds a run", unlearn(out="{ws}/run"), r"--overwrite"),
    ("out is a file", unlearn(out="{ws}/notes.txt"), r"is an existing file"),
    ("config file missing", unlearn("--config", "{ws}/missing.yaml"), r"config file .*missing.yaml does not exist"),
    ("config file not YAML", unlearn("--config", "{ws}/bad.yaml"), r"bad.yaml: not valid YAML"),
    ("config file a list", unlearn("--config", "{ws}/list.yaml"), r"top level must be a mapping"),
    ("config file with a typo", unlearn("--config", "{ws}/typo.yaml"), r"Did you mean 'lr'"),
    ("no method at all", ["unlearn", "--model", "tiny", "--benchmark", "fictional", "--out", "{out}"], r"choose a method"),
    # eval
    ("eval metric unknown", evaluate("--metrics", "nothing"), r"unknown metric 'nothing'"),
    ("eval metric typo", evaluate("--metrics", "mia_min_kk"), r"Did you mean 'mia_min_k'"),
    ("eval metric of a missing split", evaluate("--metrics", "nosplit/rouge"), r"no split 'nosplit'"),
    ("eval option typo", evaluate("--eval.max_new_token", "8"), r"unknown option 'eval.max_new_token'"),
    ("eval uncapped names no split", evaluate("--eval.uncapped", "nosuchsplit"),
     r"eval.uncapped names nosuchsplit, not a split"),
    ("eval k out of range", evaluate("--eval.k", "2"), r"eval.k must be a fraction"),
    ("eval precision", evaluate("--eval.precision", "fp16"), r"is not one of auto, bf16, fp32"),
    ("eval option of another command", evaluate("--train.lr", "1"), r"takes only --eval"),
    ("eval reference without run.json", evaluate("--reference", "{ws}/empty"), r"has no run.json"),
    ("eval reference not JSON", evaluate("--reference", "{ws}/badrun"), r"invalid JSON"),
    ("eval plan unknown", evaluate("--plan", "tofuu"), r"unknown plan 'tofuu'.*Did you mean 'tofu'"),
    ("eval forget quality without reference", evaluate("--metrics", "forget_quality"), r"forget_quality cannot run"),
    ("eval out is the model", evaluate(out="{ws}/m"), r"never writes into its inputs"),
    ("eval out is the benchmark", evaluate(out="{ws}/bench"), r"never writes into its inputs"),
    ("eval benchmark missing", evaluate(bench="{ws}/nope"), r"does not exist"),
    ("eval model missing", evaluate(model="{ws}/nope"), r"neither an existing folder"),
    ("eval reference of another benchmark", evaluate("--reference", "{ws}/otherref", "--metrics", "forget_quality"),
     r"another benchmark"),
    # report
    ("report without runs", ["report", "--out", "{out}/r.html"], r"name at least one run"),
    ("report out not html", ["report", "{ws}/run", "--out", "{out}/r.txt"], r"must end in .html"),
    ("report out is a folder", ["report", "{ws}/run", "--out", "{ws}/empty"], r"is a folder"),
    ("report over a run's record", ["report", "{ws}/run", "--out", "{ws}/run/run.html"], r"belongs to the run"),
    ("report over a model's config", ["report", "{ws}/run", "--out", "{ws}/m/config.html"], r"belongs to the run, model"),
    ("report over a user's file", ["report", "{ws}/run", "--out", "{ws}/notes.html"], r"was not written by `obliviate report`"),
    ("report run missing", ["report", "{ws}/nope", "--out", "{out}/r.html"], r"does not exist"),
    ("report run not JSON", ["report", "{ws}/badrun", "--out", "{out}/r.html"], r"invalid JSON"),
    ("report benchmark missing", ["report", "{ws}/run", "--benchmark", "{ws}/nope", "--out", "{out}/r.html"],
     r"not a prepared benchmark"),
    ("report unknown option", ["report", "{ws}/run", "--out", "{out}/r.html", "--colour", "red"], r"takes no option"),
    # prepare
    ("prepare benchmark unknown", ["prepare", "--model", "tiny", "--benchmark", "fictionl", "--out", "{out}"],
     r"Did you mean 'fictional'"),
    ("prepare lr negative", prepare("--train.lr", "-1"), r"train.lr"),
    ("prepare benchmark option typo", prepare("--benchmark.n_peple", "6"), r"Did you mean 'n_people'"),
    ("prepare into a model folder", prepare(out="{ws}/m"), r"already exists|never writes"),
    ("prepare model unknown", ["prepare", "--model", "no/such/model", "--out", "{out}"], r"neither an existing folder"),
    ("prepare rehearsal too large", prepare("--rehearsal", "1000"), r"rehearsal must be between 0 and"),
    ("prepare option typo", prepare("--rehersal", "4"), r"Did you mean 'rehearsal'"),
    # data files of a benchmark built from the user's own files (MUSE layout), and a damaged prepared folder
    ("muse without a data path", unlearn(bench="muse"), r"needs --benchmark.path.*not shipped.*download"),
    ("eval muse without a data path", evaluate(bench="muse"), r"needs --benchmark.path.*hf download"),
    ("prepare muse without a data path", ["prepare", "--model", "tiny", "--benchmark", "muse", "--out", "{out}"],
     r"needs --benchmark.path.*--local-dir"),
    ("data nested too deeply", unlearn("--benchmark.path", "{ws}/muse_deep", bench="muse"),
     r"muse_deep/raw/forget.json: line 1: JSON nested too deeply"),
    ("data nested too deeply on one line", evaluate("--benchmark.path", "{ws}/muse_deepline", bench="muse"),
     r"forget.jsonl: line 2: JSON nested too deeply"),
    ("data with a lone surrogate", unlearn("--benchmark.path", "{ws}/muse_surrogate", bench="muse"),
     r"forget.jsonl: line 2: field 'text': holds a lone surrogate \\udc00"),
    ("data not UTF-8", ["prepare", "--model", "tiny", "--benchmark", "muse", "--benchmark.path", "{ws}/muse_latin1",
                        "--out", "{out}"], r"raw/forget.txt: line 3: not UTF-8 text.*re-save"),
    ("prepared task.json nested too deeply", evaluate(bench="{ws}/deepbench"), r"task.json: line 1: JSON nested too deeply"),
    # models that need their own code; prompt formats the model cannot follow
    ("model needs its own code", unlearn(model="{ws}/custom_code"), r"only its own Python code.*does not run code"),
    ("eval model needs its own code", evaluate(model="{ws}/custom_code"), r"trust_remote_code=True"),
    ("chat format without a chat template", unlearn("--prompt-format", "chat", model="{ws}/m", bench="{ws}/bench"),
     r"'chat' needs a chat template.*--prompt-format plain"),
    ("eval chat format without a chat template", evaluate("--eval.prompt_format", "chat"),
     r"'chat' needs a chat template.*--eval.prompt_format plain"),
    ("prepare chat format without a chat template",
     ["prepare", "--model", "{ws}/m", "--prompt_format", "chat", *TINY_BENCH, "--out", "{out}"], r"--prompt_format plain"),
    # model folders: a typo of a folder, pickled weights, no weights, no tokenizer
    ("model path a typo of a folder", unlearn(model="{ws}/prep/targett"),
     r"model folder \S*prep/targett does not exist; did you mean \S*prep/target\?"),
    ("model weights only pickled", unlearn(model="{ws}/pickled"),
     r"pytorch_model.bin.*refuses pickled weights on purpose.*safe_serialization=True"),
    ("eval model weights only pickled", evaluate(model="{ws}/pickled"), r"can run any code"),
    ("prepare from pickled weights", ["prepare", "--model", "{ws}/pickled", "--out", "{out}"],
     r"refuses pickled weights"),
    ("model folder without weights", evaluate(model="{ws}/noweights"),
     r"holds no model weights: no \*.safetensors file"),
    ("model folder without tokenizer", unlearn(model="{ws}/notok"),
     r"has no tokenizer: tokenizer.json and tokenizer_config.json are missing"
     r".*saved beside the weights"),
    ("eval model folder without tokenizer", evaluate(model="{ws}/notok"),
     r"tokenizer.save_pretrained\(folder\)"),
    # TOFU files of the user's own: other field names, null answers, what is not a data file
    ("tofu fields named otherwise", unlearn("--benchmark.path", "{ws}/tofu_renamed", bench="tofu"),
     r"field 'question': missing.*--benchmark.field_map question=your_field,answer=your_field"),
    ("tofu field map half given", unlearn("--benchmark.path", "{ws}/tofu_renamed",
                                          "--benchmark.field_map", "question=prompt", bench="tofu"),
     r"field 'answer': missing.*--benchmark.field_map question=prompt,answer=your_field"),
    ("tofu field map malformed", unlearn("--benchmark.path", "{ws}/tofu_renamed",
                                         "--benchmark.field_map", "question", bench="tofu"),
     r"benchmark.field_map: 'question' is not field=name"),
    ("tofu field map unknown field",
     unlearn("--benchmark.path", "{ws}/tofu_renamed", "--benchmark.field_map", "questoin=prompt",
             bench="tofu"),
     r"'questoin' is not a field of a qa record. Did you mean 'question'"),
    ("tofu answer null", unlearn("--benchmark.path", "{ws}/tofu_null", bench="tofu"),
     r"forget10.jsonl: line 1: field 'answer': missing its value: it is null"),
    ("eval tofu answer null", evaluate("--benchmark.path", "{ws}/tofu_null", bench="tofu"),
     r"field 'answer': missing its value: it is null"),
    ("tofu split file a CSV", unlearn("--benchmark.path", "{ws}/tofu_csv", bench="tofu"),
     r"no forget10_perturbed.json/.jsonl/.parquet or forget10.json/.jsonl/.parquet.*"
     r"Found instead: forget10_perturbed.csv is a CSV file.*expected a .jsonl, .json, .parquet"),
    ("tofu split file a folder", unlearn("--benchmark.path", "{ws}/tofu_dir", bench="tofu"),
     r"forget10_perturbed.json is a folder, where a .json file is expected"),
    ("tofu path a CSV file", unlearn("--benchmark.path", "{ws}/notes.csv", bench="tofu"),
     r"notes.csv is a .csv file; TOFU reads a folder that holds its files"),
    # metric selection: a name that no split of the plan can run
    ("eval metric name no split can run", evaluate("--plan", "tofu", "--metrics", "mia_reference"),
     r"metric mia_reference cannot run on any split of this plan \(forget/mia_reference: "),
    # demo
    ("demo method typo", demo("--methods", "grad_dif"), r"Did you mean 'grad_diff'"),
    ("demo method option typo", demo("--methods", "npo", "--npo.bta", "0.1"), r"Did you mean 'beta'"),
    ("demo method lr negative", demo("--methods", "npo", "--npo.train.lr", "-1"), r"train.lr"),
    ("demo options of a method not run", demo("--methods", "npo", "--grad_diff.beta", "1"), r"not among --methods"),
    ("demo out is a file", ["demo", "--model", "tiny", "--out", "{ws}/notes.txt"], r"is an existing file"),
    # the shared output checks: nothing the user owns is cleared, a file is no folder
    ("overwrite a folder obliviate did not write", unlearn("--overwrite", out="{ws}/userdir"),
     r"holds no run.json: it is not a folder obliviate wrote"),
    ("eval out is a file", evaluate(out="{ws}/notes.txt"), r"is an existing file"),
    ("method named twice", unlearn("--config", "{ws}/method.yaml"), r"the method is named twice: 'npo'.*'ga'"),
    # attack: the attacked model must be the evaluated one; a list that names nothing
    ("attack another model than the evaluated one", ["attack", "--run", "{ws}/run", "--attack", "relearn", "--model", "{ws}/m2",
                                                     "--benchmark", "{ws}/bench"],
     r"is not the model run .* was evaluated on"),
    ("attack list naming nothing", ["attack", "--run", "{ws}/run", "--attack", ","], r"name the attacks"),
    ("attack quantile not a number", ["attack", "--run", "{ws}/run", "--attack", "relearn", "--quantile", "high"],
     r"quantile: expected a number"),
    ("eval reference with values that are not numbers", evaluate("--reference", "{ws}/textref", "--metrics",
                                                                 "forget_quality"),
     r"textref/run.json: metrics/forget/truth_ratio/values does not follow the run record's schema"),
    # report: unfinished and malformed runs
    ("report a failed run", ["report", "{ws}/failedrun", "--out", "{out}/r.html"], r"is a run that failed \(no number 2\)"),
    ("report a running run", ["report", "{ws}/runningrun", "--out", "{out}/r.html"], r"still going or was killed"),
    ("report metrics that are a list", ["report", "{ws}/listrun", "--out", "{out}/r.html"], r"'metrics' section \(a list\) does not follow the run record's schema"),
    # protocol: options of the other kind, a damaged record to resume
    ("protocol scale given requests", protocol("scale", "--requests", "2"), r"--requests applies to `protocol sequential`"),
    ("protocol sequential given sizes", protocol("sequential", "--sizes", "1,2"), r"--sizes applies to `protocol scale`"),
    ("protocol resume of a damaged record", protocol("sequential", "--requests", "1", "--resume", out="{ws}/badproto"),
     r"protocol.json: not valid JSON"),
    ("protocol overwrite of a user's folder", protocol("sequential", "--requests", "1", "--overwrite", out="{ws}/userdir"),
     r"holds no protocol.json: it is not a folder obliviate wrote"),
]


def checksums(root: Path, skip: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and skip not in p.parents and p != skip:
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import obliviate as ob
    from obliviate.models.io import save_model

    ws = tmp_path_factory.mktemp("ws")
    lm = ob.load_model("tiny")
    save_model(lm.model, lm.tokenizer, ws / "m")
    task = ob.load_benchmark("fictional", n_people=6, n_world=2)
    task.save(ws / "bench")
    ob.evaluate(ws / "m", ws / "bench", out=ws / "run", metrics="forget/prob,forget/truth_ratio")
    ob.evaluate(ws / "m", ob.load_benchmark("fictional", n_people=6, n_world=2, seed=9), out=ws / "otherref",
                metrics="forget/truth_ratio")
    (ws / "empty").mkdir()
    (ws / "notes.txt").write_text("my notes")
    (ws / "notes.csv").write_text("my,table")
    (ws / "bad.yaml").write_text("train: [lr: 1\n")
    (ws / "list.yaml").write_text("- 1\n- 2\n")
    (ws / "typo.yaml").write_text("train:\n  lrr: 1.0e-4\n")
    (ws / "badrun").mkdir()
    (ws / "badrun" / "run.json").write_text("{not json")
    deep = "[" * 100_000 + "]" * 100_000
    ok = '{"text": "a retained article"}\n'
    muse_files = {  # folder -> raw/forget file; raw/retain1.jsonl is fine in each
        "muse_deep": ("forget.json", deep.encode()),
        "muse_deepline": ("forget.jsonl", (ok + deep + "\n").encode()),
        "muse_surrogate": ("forget.jsonl", (ok + '{"text": "half a pair \\udc00 here"}\n').encode()),
        "muse_latin1": ("forget.txt", b"An article.\n\nCaf\xe9 au lait.\n"),
    }
    for folder, (name, data) in muse_files.items():
        (ws / folder / "raw").mkdir(parents=True)
        (ws / folder / "raw" / name).write_bytes(data)
        (ws / folder / "raw" / "retain1.jsonl").write_text(ok)
    (ws / "deepbench").mkdir()
    (ws / "deepbench" / "task.json").write_text(deep)
    shutil.copytree(ws / "m", ws / "custom_code")
    config = json.loads((ws / "custom_code" / "config.json").read_text())
    config.update(model_type="x_lm", auto_map={"AutoConfig": "configuration_x.XConfig",
                                                "AutoModelForCausalLM": "modeling_x.XForCausalLM"})
    (ws / "custom_code" / "config.json").write_text(json.dumps(config))
    (ws / "custom_code" / "modeling_x.py").write_text("raise SystemExit('the folder code ran')\n")
    (ws / "userdir" / "model").mkdir(parents=True)
    (ws / "userdir" / "notes.txt").write_text("precious")
    import torch

    with torch.no_grad():  # another model: the same architecture, other weights
        next(lm.model.parameters()).add_(1.0)
    save_model(lm.model, lm.tokenizer, ws / "m2")
    (ws / "method.yaml").write_text("method:\n  name: ga\n")
    for name, data in {"failedrun": {"kind": "unlearn", "status": "failed", "failure": {"error": "RuntimeError",
                                                                                          "message": "no number 2"}},
                       "runningrun": {"kind": "unlearn", "status": "running"},
                       "listrun": {"kind": "eval", "metrics": []}}.items():
        (ws / name).mkdir()
        (ws / name / "run.json").write_text(json.dumps(data))
    textref = json.loads((ws / "run" / "run.json").read_text())
    textref["metrics"]["forget/truth_ratio"]["values"] = ["high"] * len(textref["metrics"]["forget/truth_ratio"]["values"])
    (ws / "textref").mkdir()
    (ws / "textref" / "run.json").write_text(json.dumps(textref))
    (ws / "badproto").mkdir()
    (ws / "badproto" / "protocol.json").write_text("{not json")
    shutil.copytree(ws / "m", ws / "prep" / "target")
    for name, drop in {"pickled": ["model.safetensors"], "noweights": ["model.safetensors"],
                       "notok": ["tokenizer.json", "tokenizer_config.json"]}.items():
        shutil.copytree(ws / "m", ws / name)
        for file in drop:
            (ws / name / file).unlink()
    (ws / "pickled" / "pytorch_model.bin").write_bytes(b"a pickle that must never be loaded")
    qa = '{"question": "Who?", "answer": "Ann."}\n'
    tofu_files = {  # folder -> files; the retain split is fine in each
        "tofu_renamed": {"forget10.jsonl": '{"prompt": "Who?", "completion": "Ann."}\n'},
        "tofu_null": {"forget10.jsonl": '{"question": "Who?", "answer": null}\n'},
        "tofu_csv": {"forget10_perturbed.csv": "question,answer\nWho?,Ann.\n"},
        "tofu_dir": {"forget10_perturbed.json/part.txt": qa},
    }
    for folder, files in tofu_files.items():
        for name, text in {**files, "retain90.jsonl": qa}.items():
            (ws / folder / name).parent.mkdir(parents=True, exist_ok=True)
            (ws / folder / name).write_text(text)
    for lock in ws.rglob(".*.lock"):
        lock.unlink()
    return ws


@pytest.mark.parametrize(("argv", "expected"), [pytest.param(a, e, id=i) for i, a, e in CASES])
def test_a_bad_input_gets_a_clear_early_error(
    argv: list[str], expected: str, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import re

    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    loaded: list[str] = []

    def no_loading(spec: object, *args: object, **kwargs: object) -> None:
        loaded.append(str(spec))
        raise AssertionError(f"a model ({spec}) was loaded before the input was checked")

    monkeypatch.setattr("obliviate.models.io.load_model", no_loading)
    before = checksums(workspace, out)
    args = [a.replace("{ws}", str(workspace)).replace("{out}", str(out)) for a in argv]
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    captured = capsys.readouterr()
    message = captured.err + captured.out
    assert code == 2, message
    assert re.search(expected, message, re.S), message
    assert "Traceback" not in message
    assert not loaded
    assert checksums(workspace, out) == before, "a file outside --out changed"
    if out.exists():
        assert not [p for p in out.rglob("*") if p.is_file() and not p.name.endswith(".lock")], "a failed run left files"


def test_the_corpus_is_broad() -> None:
    commands = {argv[0] for _, argv, _ in CASES}
    assert commands == {"unlearn", "eval", "report", "prepare", "demo", "attack", "protocol"}
    assert len(CASES) >= 130
