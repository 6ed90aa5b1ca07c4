"""Methods ga, grad_diff, kl, npo, simnpo, idk_sft, idk_dpo; LoRA and FILA; the unlearn CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from obliviate.errors import ConfigError
from obliviate.methods.base import METHODS, MethodContext

MY_METHODS = ("ga", "grad_diff", "kl", "npo", "simnpo", "idk_sft", "idk_dpo")


@pytest.fixture(scope="module")
def small() -> dict[str, Any]:
    """An untrained tiny model's weights, its tokenizer and a 6-person task (10 forget QA)."""
    from obliviate.benchmarks.fictional import build_fictional
    from obliviate.models import load_model

    lm = load_model("tiny")
    state = {k: v.detach().clone() for k, v in lm.model.state_dict().items()}
    return {"state": state, "tokenizer": lm.tokenizer, "task": build_fictional(n_people=6, n_world=2)}


def test_methods_are_registered_lazily_under_their_class_names() -> None:
    """``obliviate ls methods`` needs no method module (and no torch); each class knows its name."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom obliviate.methods import METHODS\n"
        "print(len(METHODS), [METHODS.help(n) for n in METHODS.names()].count(''), "
        "[m for m in sys.modules if m.startswith('obliviate.methods.') or m == 'torch'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "12 0 []"
    for name in METHODS.names():
        assert METHODS.get(name).name == name


def fresh_model(state: dict[str, Any]) -> Any:
    from obliviate.models import load_model

    model = load_model("tiny").model
    model.load_state_dict(state)
    return model


def setup(name: str, small: dict[str, Any], options: dict[str, Any] | None = None, **train: Any) -> tuple:
    """(model, method, items, collate, TrainConfig, make_reference, counter) for a low-level run."""
    from obliviate.data.formatting import PromptFormatter, make_collate
    from obliviate.methods.base import resolve_method
    from obliviate.training.loop import TrainConfig
    from obliviate.unlearning import build_items

    model = fresh_model(small["state"])
    method = resolve_method(name, options)
    tok = small["tokenizer"]
    items = build_items(small["task"], PromptFormatter(tok), method, 96, 0)
    settings = {"lr": 1e-3, "batch_size": 4, "max_steps": 3, "bf16": "off", "weight_decay": 0.0, "max_length": 96}
    cfg = TrainConfig(**{**settings, **train})
    counter = {"forward": 0}
    reference: dict[str, Any] = {}

    def make_reference() -> Any:
        if "model" not in reference:
            ref = fresh_model(small["state"]).eval()
            ref.requires_grad_(False)
            ref.register_forward_hook(lambda *_: counter.__setitem__("forward", counter["forward"] + 1))
            reference["model"] = ref
        return reference["model"]

    return model, method, items, make_collate(tok.pad_token_id), cfg, make_reference, counter


def context(model: Any, method: Any, items: list, collate: Any, cfg: Any, make_reference: Any, small: dict) -> MethodContext:
    from obliviate.data.formatting import PromptFormatter

    tok = small["tokenizer"]
    return MethodContext(model, tok, PromptFormatter(tok), small["task"], items, collate, cfg, make_reference)


def run_low_level(name: str, small: dict[str, Any], model: Any = None, options: dict | None = None, **train: Any) -> tuple:
    """prepare + 3 training steps; returns (model, train result, reference forward count in training)."""
    import torch

    from obliviate.training.loop import train as train_loop

    base, method, items, collate, cfg, make_reference, counter = setup(name, small, options, **train)
    model = base if model is None else model
    with torch.no_grad():
        method.prepare(context(model, method, items, collate, cfg, make_reference, small))
    counter["forward"] = 0
    result = train_loop(model, method.loss, items, collate, cfg, progress=False)
    return model, result, counter["forward"]


# --------------------------------------------------------------------------- (a) parameters move


@pytest.mark.parametrize("name", MY_METHODS)
def test_every_trainable_parameter_changes(name: str, small: dict[str, Any]) -> None:
    """Full fine-tuning with weight decay 0: each parameter tensor moves by its own gradient."""
    import torch

    model, result, _ = run_low_level(name, small)
    assert result.steps == 3 and not result.diverged
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p.detach(), small["state"][n])]
    assert unchanged == []
    assert "forget_nll" in result.log[-1]
    if METHODS.get(name).uses_retain:
        assert "retain_nll" in result.log[-1]


def test_lora_run_trains_adapters_and_keeps_the_base_bit_identical(small: dict[str, Any]) -> None:
    import torch

    from obliviate.models.lora import LoraOptions, apply_lora

    model, method, items, collate, cfg, make_reference, _ = setup("npo", small)
    peft_model = apply_lora(model, LoraOptions(enabled=True, r=4, alpha=8), items=items, collate=collate)
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters()}
    trained = run_low_level("npo", small, model=peft_model)[0]
    params = dict(trained.named_parameters())
    adapters = [n for n, p in params.items() if p.requires_grad]
    assert adapters and all("lora_" in n for n in adapters)
    assert all(not torch.equal(params[n].detach(), before[n]) for n in adapters)
    frozen = [n for n in params if n not in adapters]
    assert all(torch.equal(params[n].detach(), before[n]) for n in frozen)
    assert all(torch.equal(before[n], small["state"][n.removeprefix("base_model.model.").replace(".base_layer", "")]) for n in frozen)


def test_fila_moves_the_important_part_into_the_adapter_without_changing_the_output(small: dict[str, Any]) -> None:
    """W_base + scaling·B·A = W, so the wrapped model's logits equal the original's at step 0."""
    import torch

    from obliviate.models.lora import LoraOptions, apply_lora

    model, _, items, collate, *_ = setup("npo", small)
    batch = collate(items[:4])["forget"]
    with torch.no_grad():
        expected = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    peft_model = apply_lora(model, LoraOptions(enabled=True, r=4, alpha=8, init="fila"), items=items, collate=collate)
    with torch.no_grad():
        got = peft_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert (got - expected).abs().max() < 1e-4
    q = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    assert q.lora_B["default"].weight.abs().max() > 0  # unlike the default init (B = 0)
    original = small["state"]["model.layers.0.self_attn.q_proj.weight"]
    assert not torch.equal(q.base_layer.weight, original)


def test_fila_without_retain_pairs_and_unknown_targets_fail_clearly(small: dict[str, Any]) -> None:
    from obliviate.models.lora import LoraOptions, apply_lora

    model, _, items, collate, *_ = setup("ga", small)  # ga items have no retain part
    with pytest.raises(ConfigError, match="FILA needs a retain split"):
        apply_lora(model, LoraOptions(enabled=True, r=4, init="fila"), items=items, collate=collate)
    with pytest.raises(ConfigError, match="q_proj"):
        apply_lora(fresh_model(small["state"]), LoraOptions(enabled=True, targets=("qproj",)))


# --------------------------------------------------------------------------- (b) behaviour


# The behaviour test runs over the whole registry in tests/unit/test_method_behaviour.py.


# --------------------------------------------------------------------------- (c) cached reference


@pytest.mark.parametrize(
    ("name", "options", "term", "first_value"),
    [
        # log-ratio 0 at the first step: −(2/β)·log σ(0) = (2/0.1)·ln 2 = 20 × 0.693147 = 13.8629
        ("npo", None, "npo", 20 * math.log(2)),
        ("idk_dpo", None, "dpo", 20 * math.log(2)),
        # TOFU scale has no 2/β factor: −log σ(0) = ln 2 = 0.693147
        ("idk_dpo", {"scale": "tofu"}, "dpo", math.log(2)),
    ],
)
def test_reference_log_probs_are_cached(name: str, options: dict | None, term: str, first_value: float, small: dict) -> None:
    _, result, ref_forwards = run_low_level(name, small, options=options)
    assert ref_forwards == 0
    assert result.log[0][term] == pytest.approx(first_value, abs=1e-4)


def test_kl_retain_keeps_a_live_reference_forward(small: dict[str, Any]) -> None:
    """The counter works: NPO-KL runs the reference on each of its 3 retain batches."""
    _, _, ref_forwards = run_low_level("npo", small, options={"retain_loss": "kl"})
    assert ref_forwards == 3


# --------------------------------------------------------------------------- (d) the CLI


def cli(*argv: str) -> int:
    from obliviate.cli.main import main

    return main(list(argv))


def cli_args(out: Path, *more: str) -> list[str]:
    return ["unlearn", "--model", "tiny", "--benchmark", "fictional", "--out", str(out),
            "--benchmark.n_people", "6", "--benchmark.n_world", "2", "--train.bf16", "off", *more]


def test_cli_unlearn_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Options: method train_defaults < YAML preset < dotted flags."""
    out = tmp_path / "run"
    preset = tmp_path / "preset.yaml"
    preset.write_text("method:\n  beta: 0.3\n  c_retain: 0.5\ntrain:\n  lr: 2.0e-4\n  max_steps: 2\n")
    assert cli(*cli_args(out, "--method", "npo", "--config", str(preset), "--method.beta", "0.2")) == 0
    assert (out / "model" / "model.safetensors").is_file()
    data = json.loads((out / "run.json").read_text())
    assert data["status"] == "completed"
    assert data["config"]["method"] == {"name": "npo", "beta": 0.2, "retain_loss": "nll", "c_npo": 1.0,
                                        "c_retain": 0.5, "kl_positions": "all"}
    assert data["config"]["train"]["lr"] == 2e-4
    assert data["config"]["train"]["epochs"] == METHODS.get("npo").train_defaults["epochs"]
    assert data["benchmark"]["version"] == "1" and data["benchmark"]["sizes"]["forget"] == 10
    assert set(data["versions"]) >= {"torch", "transformers", "peft", "accelerate", "obliviate"}
    assert [row["step"] for row in data["train"]["log"]] == [1, 2]
    assert {"forget_nll", "retain_nll"} <= set(data["train"]["log"][0])
    capsys.readouterr()
    assert cli(*cli_args(out, "--method", "npo", "--train.max_steps", "2")) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli(*cli_args(out, "--method", "npo", "--train.max_steps", "2", "--train.lr", "1", "--resume")) == 2
    assert "differ" in capsys.readouterr().err


def test_cli_typo_fails_before_the_model_loads(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_loading(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr("obliviate.models.io.load_model", no_loading)
    assert cli(*cli_args(tmp_path / "run", "--method", "npo", "--method.bta", "0.2")) == 2
    assert "did you mean 'beta'" in capsys.readouterr().err.lower()
    assert cli(*cli_args(tmp_path / "run", "--method", "npo", "--lora.enabled", "true", "--lora.alhpa", "4")) == 2
    assert "did you mean 'alpha'" in capsys.readouterr().err.lower()
    assert not (tmp_path / "run").exists()


def test_cli_divergence_saves_the_last_good_model_and_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """An absurd learning rate (1e30) makes step 2's loss non-finite; step 1's weights are saved."""
    out = tmp_path / "run"
    assert cli(*cli_args(out, "--method", "ga", "--train.lr", "1e30", "--train.max_steps", "4")) == 3
    assert "diverged" in capsys.readouterr().err
    data = json.loads((out / "run.json").read_text())
    assert data["status"] == "diverged" and data["train"]["steps"] < 4
    assert (out / "model" / "model.safetensors").is_file()


def test_cli_resume_after_an_interruption_matches_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted during step 4 (checkpoint at step 2), resumed: same weights as 4 steps in one go."""
    from safetensors.torch import load_file

    from obliviate.methods.npo import NPO

    steps = ["--method", "npo", "--train.max_steps", "4", "--train.save_every", "2"]
    assert cli(*cli_args(tmp_path / "whole", *steps)) == 0
    calls = {"n": 0}
    original = NPO.loss

    def interrupted(self: Any, model: Any, batch: dict[str, Any]) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(self, model, batch)

    monkeypatch.setattr(NPO, "loss", interrupted)
    out = tmp_path / "resumed"
    assert cli(*cli_args(out, *steps)) == 130
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert (out / "checkpoints" / "last").is_dir()
    monkeypatch.setattr(NPO, "loss", original)
    assert cli(*cli_args(out, *steps, "--resume")) == 0
    assert not (out / "checkpoints").exists()  # removed once the model is saved
    whole = load_file(str(tmp_path / "whole" / "model" / "model.safetensors"))
    resumed = load_file(str(out / "model" / "model.safetensors"))
    assert max(float((whole[k] - resumed[k]).abs().max()) for k in whole) < 1e-6
    log = json.loads((out / "run.json").read_text())["train"]["log"]
    assert [row["step"] for row in log] == [1, 2, 3, 4]
    assert cli(*cli_args(out, *steps, "--resume")) == 0  # finished: nothing to do
