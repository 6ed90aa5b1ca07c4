"""Methods rmu, ihl, flat, wagle and task_vector: what they train, their losses, their behaviour."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from obliviate.errors import ConfigError

MY_METHODS = ("rmu", "ihl", "flat", "wagle", "task_vector")


@pytest.fixture(scope="module")
def small() -> dict[str, Any]:
    """An untrained tiny model's weights, its tokenizer and a 6-person task (10 forget QA)."""
    from obliviate.benchmarks.fictional import build_fictional
    from obliviate.models import load_model

    lm = load_model("tiny")
    state = {k: v.detach().clone() for k, v in lm.model.state_dict().items()}
    return {"state": state, "tokenizer": lm.tokenizer, "task": build_fictional(n_people=6, n_world=2)}


def fresh_model(state: dict[str, Any]) -> Any:
    from obliviate.models import load_model

    model = load_model("tiny").model
    model.load_state_dict(state)
    return model


def train_config(**over: Any) -> Any:
    from obliviate.training.loop import TrainConfig

    settings = {"lr": 1e-3, "batch_size": 4, "max_steps": 3, "bf16": "off", "weight_decay": 0.0, "max_length": 96}
    return TrainConfig(**{**settings, **over})


def run(name: str, small: dict[str, Any], options: dict[str, Any] | None = None, lora: Any = None, before_finalize: dict | None = None, **train: Any) -> tuple:
    """Unlearn the small task for 3 steps; optionally copy the weights just before ``finalize``."""
    from obliviate.methods.base import resolve_method
    from obliviate.unlearning import train_method

    method = resolve_method(name, options)
    if before_finalize is not None:
        original = method.finalize

        def finalize(model: Any, ctx: Any) -> Any:
            before_finalize["weights"] = {n: p.detach().clone() for n, p in model.named_parameters()}
            before_finalize["frozen"] = method.frozen_entries() if hasattr(method, "frozen_entries") else {}
            return original(model, ctx)

        method.finalize = finalize
    model = fresh_model(small["state"])
    result = train_method(model, small["tokenizer"], small["task"], method, train_config(**train), lora=lora, progress=False)
    assert result.train.steps == 3 and not result.train.diverged
    return result.model, result.train, method


def context(name: str, small: dict[str, Any], options: dict[str, Any] | None = None) -> tuple:
    """(model, method, ctx, first batch) after ``prepare``, as :func:`obliviate.unlearning.train_method` builds them."""
    import copy

    import torch

    from obliviate.data.formatting import PromptFormatter, make_collate
    from obliviate.methods.base import MethodContext, resolve_method
    from obliviate.unlearning import build_items

    model = fresh_model(small["state"])
    method = resolve_method(name, options)
    tok = small["tokenizer"]
    items = build_items(small["task"], PromptFormatter(tok), method, 96, 0)
    collate = make_collate(tok.pad_token_id)
    frozen = copy.deepcopy(model).eval().requires_grad_(False)
    ctx = MethodContext(model, tok, PromptFormatter(tok), small["task"], items, collate, train_config(), lambda: frozen)
    with torch.no_grad():
        method.prepare(ctx)
    return model, method, ctx, collate(items[:4])


# --------------------------------------------------------------------------- what each method trains


@pytest.mark.parametrize("name", ("ihl", "flat", "task_vector"))
def test_full_finetuning_methods_move_every_parameter(name: str, small: dict[str, Any]) -> None:
    import torch

    store: dict[str, Any] = {}
    _, result, _ = run(name, small, before_finalize=store)
    unchanged = [n for n, p in store["weights"].items() if torch.equal(p, small["state"][n])]
    assert unchanged == []
    assert "forget_nll" in result.log[-1]
    assert ("retain_nll" in result.log[-1]) == (name == "ihl")


def test_rmu_trains_only_the_middle_down_projections(small: dict[str, Any]) -> None:
    """Tiny has 4 blocks: block 2 is steered and blocks 1, 2's mlp.down_proj are the only ones trained."""
    import torch

    model, result, method = run("rmu", small)
    assert (method.layer, method.layer_ids) == (2, (1, 2))
    changed = sorted(n for n, p in model.named_parameters() if not torch.equal(p.detach(), small["state"][n]))
    assert changed == ["model.layers.1.mlp.down_proj.weight", "model.layers.2.mlp.down_proj.weight"]
    assert all(p.requires_grad for p in model.parameters())  # finalize gives the frozen ones back
    assert {"forget_nll", "retain_nll", "rmu_forget", "rmu_retain"} <= set(result.log[-1])


def test_rmu_layer_and_pattern_options(small: dict[str, Any]) -> None:
    import torch

    options = {"layer_id": 3, "layer_ids": [0, 3], "param_pattern": r"self_attn\.(q|v)_proj"}
    model, _, _ = run("rmu", small, options)
    changed = sorted(n for n, p in model.named_parameters() if not torch.equal(p.detach(), small["state"][n]))
    assert changed == [f"model.layers.{i}.self_attn.{m}_proj.weight" for i in (0, 3) for m in ("q", "v")]


def test_rmu_with_lora_trains_only_the_down_projection_adapters(small: dict[str, Any]) -> None:
    """LoRA's B starts at 0, so after training exactly the trained adapters have a non-zero B."""
    from obliviate.models.lora import LoraOptions

    model, _, _ = run("rmu", small, lora=LoraOptions(enabled=True, r=4, alpha=8, save="adapter"))
    moved = sorted(n.split("model.layers.")[1] for n, p in model.named_parameters() if "lora_B" in n and bool(p.any()))
    assert moved == ["1.mlp.down_proj.lora_B.default.weight", "2.mlp.down_proj.lora_B.default.weight"]


def test_rmu_retain_stream_is_seeded_by_the_forget_batch(small: dict[str, Any]) -> None:
    """The same forget items draw the same retain inputs; the draw covers more than the pairs."""
    import torch

    _, method, ctx, batch = context("rmu", small)
    first, again = method._retain_batch(batch), method._retain_batch(batch)
    assert torch.equal(first["input_ids"], again["input_ids"])
    drawn = set()
    for start in range(0, len(ctx.items) - 1):
        part = method._retain_batch(ctx.collate(ctx.items[start : start + 2]))
        drawn.update(tuple(ids[m.bool()].tolist()) for ids, m in zip(part["input_ids"], part["attention_mask"]))
    paired = {tuple(it["retain"].input_ids) for it in ctx.items}
    everything = {tuple(it["retain"].input_ids) for it in method._retain_items}
    assert drawn <= everything and len(drawn - paired) > 0
    _, paired_method, _, batch = context("rmu", small, {"retain_stream": False})
    assert paired_method._retain_batch(batch) is batch["retain"]


def test_rmu_default_layers_follow_the_depth() -> None:
    from obliviate.methods.rmu import default_layers

    assert default_layers(4, -1, ()) == (2, (1, 2))  # tiny
    assert default_layers(30, -1, ()) == (15, (13, 14, 15))  # SmolLM2-135M
    assert default_layers(32, 7, ()) == (7, (5, 6, 7))  # WMDP's Zephyr setting
    assert default_layers(1, -1, ()) == (0, (0,))
    with pytest.raises(ConfigError, match="do not change its output"):
        default_layers(4, 1, (1, 2))
    with pytest.raises(ConfigError, match="out of range"):
        default_layers(4, 4, ())


def test_rmu_pattern_that_matches_nothing_fails_clearly(small: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="matches no trainable parameter"):
        context("rmu", small, {"param_pattern": "no_such_module"})
    with pytest.raises(ConfigError, match="regular expression"):
        context("rmu", small, {"param_pattern": "("})


def test_wagle_masked_weights_are_bit_identical(small: dict[str, Any]) -> None:
    """Half the weights are masked; with or without weight decay they end exactly at θ₀."""
    import torch

    for weight_decay in (0.0, 0.1):
        store: dict[str, Any] = {}
        model, _, method = run("wagle", small, {"ratio": 0.5}, before_finalize=store, weight_decay=weight_decay)
        assert method.kept_fraction == pytest.approx(0.5, abs=1e-6)
        final = dict(model.named_parameters())
        frozen = store["frozen"]
        assert frozen, "a ratio of 0.5 must mask some weights"
        for name, mask in frozen.items():
            assert torch.equal(final[name].detach()[mask], small["state"][name][mask]), name
        trained = [n for n, m in frozen.items() if not bool(m.all())]
        moved = [n for n in trained if not torch.equal(final[n].detach()[~frozen[n]], small["state"][n][~frozen[n]])]
        assert moved == trained
        if weight_decay == 0.0:  # no weight decay: AdamW's update of a zero gradient is exactly zero
            for name, mask in frozen.items():
                assert torch.equal(store["weights"][name][mask], small["state"][name][mask]), name


def test_top_fraction_mask_keeps_the_largest_scores_globally() -> None:
    """Scores [3, 1, 2] and [5, 2] with ratio 0.4: round(0.4·5) = 2 kept, the 5 and the 3."""
    import torch

    from obliviate.methods.wagle import top_fraction_mask

    a, b = top_fraction_mask([torch.tensor([3.0, 1.0, 2.0]), torch.tensor([[5.0, 2.0]])], 0.4)
    assert a.tolist() == [True, False, False] and b.tolist() == [[True, False]]
    # four equal scores, ratio 0.5: exactly two kept, ties broken by position
    (t,) = top_fraction_mask([torch.ones(4)], 0.5)
    assert t.tolist() == [True, True, False, False]
    (full,) = top_fraction_mask([torch.zeros(3)], 1.0)
    assert full.all()


def test_wagle_options_are_checked_and_inherit_the_base(small: dict[str, Any]) -> None:
    from obliviate.methods.base import resolve_method

    with pytest.raises(ConfigError, match="cannot be wagle"):
        resolve_method("wagle", {"base": "wagle"})
    with pytest.raises(ConfigError, match="npo"):
        resolve_method("wagle", {"base": "nop"})
    with pytest.raises(ConfigError, match="ratio"):
        resolve_method("wagle", {"ratio": 0})
    with pytest.raises(ConfigError, match="beta"):
        resolve_method("wagle", {"base_options": {"beta": -1}})
    method = resolve_method("wagle", {"base": "npo", "base_options": {"beta": "0.2"}})
    assert method.base.config.beta == 0.2
    templated = resolve_method("wagle", {"base": "idk_dpo"})
    assert templated.uses_template is True


@pytest.mark.parametrize("base", ["idk_dpo", "idk_sft", "flat"])
def test_wagle_over_a_template_method_gets_templates(small: dict[str, Any], base: str) -> None:
    """build_items reads the needs from the instance, so WAGLE's items carry its base's templates."""
    import torch

    model, method, ctx, batch = context("wagle", small, {"base": base})
    assert method.uses_template is True
    assert all("template" in item and "retain" in item for item in ctx.items)
    out = method.loss(model, batch)
    assert torch.isfinite(out.loss)


# --------------------------------------------------------------------------- losses and transforms


def test_rmu_control_vector_norm_is_c(small: dict[str, Any]) -> None:
    """A fixed c gives ‖u‖ = c; the default c is 8 × the frozen block-2 norm on forget answers."""
    import torch

    from obliviate.data.formatting import PromptFormatter, collate, encode_record

    _, method, _, _ = context("rmu", small, {"steering_coeff": 6.5})
    assert float(method.control.norm()) == pytest.approx(6.5, rel=1e-6)
    model, method, _, _ = context("rmu", small)
    tok = small["tokenizer"]
    batch = collate([encode_record(PromptFormatter(tok), r, 96) for r in small["task"].forget], tok.pad_token_id)
    with torch.no_grad():  # hidden_states[3] is the output of block 2 (an independent path from the hook)
        h = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True).hidden_states[3]
    expected = 8 * float(h.norm(dim=-1)[batch["labels"] != -100].mean())
    assert method.coeff == pytest.approx(expected, rel=1e-4)
    assert float(method.control.norm()) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("mask", (True, False))
def test_rmu_loss_at_the_start(mask: bool, small: dict[str, Any]) -> None:
    """At θ₀ the retain term is exactly 0 (model = frozen copy); the forget term is MSE(h, u)."""
    import torch

    model, method, _, batch = context("rmu", small, {"mask": mask, "steering_coeff": 3.0})
    out = method.loss(model, batch)
    assert out.logs["rmu_retain"] == 0.0
    part = batch["forget"]
    with torch.no_grad():
        h = model(input_ids=part["input_ids"], attention_mask=part["attention_mask"], output_hidden_states=True).hidden_states[3]
    squared = (h - method.control).pow(2).mean(dim=-1)  # (B, T): mean over the hidden size
    if mask:  # per sequence over answer tokens, then over the batch
        keep = (part["labels"] != -100).float()
        expected = ((squared * keep).sum(-1) / keep.sum(-1)).mean()
    else:  # every position, padding included
        expected = squared.mean()
    assert out.logs["rmu_forget"] == pytest.approx(float(expected), rel=1e-5)
    assert float(out.loss.detach()) == pytest.approx(out.logs["rmu_forget"], rel=1e-6)


@pytest.mark.parametrize("options", ({}, {"official_pooling": True}, {"divergence": "KL"}))
def test_flat_loss_equals_losses_flat_loss(options: dict[str, Any], small: dict[str, Any]) -> None:
    from obliviate.methods.base import forward_logits
    from obliviate.methods.losses import flat_loss, mean_token_prob

    model, method, _, batch = context("flat", small, options)
    official = options.get("official_pooling", False)
    over = "all" if official else "answer"
    p_forget = mean_token_prob(*forward_logits(model, batch["forget"]), over=over)
    p_template = mean_token_prob(*forward_logits(model, batch["template"]), over=over)
    expected = flat_loss(p_template, p_forget, options.get("divergence", "total_variation"), pool_batch=official)
    out = method.loss(model, batch)
    assert float(out.loss.detach()) == pytest.approx(float(expected), rel=1e-6, abs=1e-7)
    assert out.logs["p_forget"] == pytest.approx(float(p_forget.mean()), rel=1e-6)
    with pytest.raises(ConfigError, match="total_variation"):
        context("flat", small, {"divergence": "total-varation"})


def test_ihl_loss_is_hinge_plus_retain_nll(small: dict[str, Any]) -> None:
    from obliviate.methods.base import forward_logits
    from obliviate.methods.losses import ihl_loss, mean_nll

    model, method, _, batch = context("ihl", small, {"retain_weight": 0.5})
    expected = ihl_loss(*forward_logits(model, batch["forget"])) + 0.5 * mean_nll(*forward_logits(model, batch["retain"]))
    assert float(method.loss(model, batch).loss) == pytest.approx(float(expected), rel=1e-6)


def test_ihl_with_fila_lora_is_loku(small: dict[str, Any]) -> None:
    """The run ihl's docstring documents: --lora.enabled true --lora.init fila."""
    from obliviate.models.lora import LoraOptions

    _, result, _ = run("ihl", small, lora=LoraOptions(enabled=True, init="fila", r=4, alpha=8))
    assert {"ihl", "forget_nll", "retain_nll"} <= set(result.log[-1])


def test_task_vector_subtracts_the_scaled_change_by_hand() -> None:
    """θ₀ = [1, 2], θ_ft = [1.5, 1], α = 2: θ₀ − 2·(θ_ft − θ₀) = [1 − 1, 2 + 2] = [0, 4]."""
    import torch

    from obliviate.methods.task_vector import TaskVector, TaskVectorConfig

    layer = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0]]))
    method = TaskVector(TaskVectorConfig(alpha=2.0))
    method.prepare(SimpleNamespace(model=layer))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.5, 1.0]]))
    method.finalize(layer, SimpleNamespace(model=layer))
    assert layer.weight.tolist() == [[0.0, 4.0]]


def test_task_vector_alpha_0_returns_theta0_and_alpha_1_returns_the_reflection(small: dict[str, Any]) -> None:
    import torch

    model, _, _ = run("task_vector", small, {"alpha": 0.0})
    assert all(torch.equal(p.detach(), small["state"][n]) for n, p in model.named_parameters())
    store: dict[str, Any] = {}
    model, _, _ = run("task_vector", small, {"alpha": 1.0}, before_finalize=store)
    for name, p in model.named_parameters():
        theta0, theta_ft = small["state"][name], store["weights"][name]
        assert not torch.equal(theta_ft, theta0), name
        torch.testing.assert_close(p.detach(), 2 * theta0 - theta_ft, rtol=0, atol=1e-6)


def test_task_vector_with_lora_negates_the_adapter(small: dict[str, Any]) -> None:
    """Default LoRA init has B = 0, so B ← −α·B_ft negates the adapter's change exactly."""
    import torch

    from obliviate.models.lora import LoraOptions

    adapter = LoraOptions(enabled=True, r=4, alpha=8, save="adapter")
    store: dict[str, Any] = {}
    model, _, _ = run("task_vector", small, {"alpha": 2.0}, lora=adapter, before_finalize=store)
    b_names = [n for n, _ in model.named_parameters() if "lora_B" in n]
    assert b_names
    params = dict(model.named_parameters())
    for name in b_names:
        assert bool(store["weights"][name].any()), name
        assert torch.equal(params[name].detach(), -2.0 * store["weights"][name])
    merged, _, _ = run("task_vector", small, {"alpha": 0.0}, lora=LoraOptions(enabled=True, r=4, alpha=8))
    assert all(torch.equal(p.detach(), small["state"][n]) for n, p in merged.named_parameters())


# --------------------------------------------------------------------------- behaviour on the trained tiny model


# The behaviour test runs over the whole registry in tests/unit/test_method_behaviour.py.


def test_answers_only_forward_runs_the_head_on_fewer_positions_with_the_same_answer_values(small: dict[str, Any]) -> None:
    """The NLL losses read answer positions only, so the head starts at the batch's first answer."""
    import torch

    from obliviate.methods.base import answer_window, forward_logits
    from obliviate.methods.losses import mean_nll, sequence_nll

    model, _, _, batch = context("grad_diff", small)
    part = batch["forget"]
    rows: list[int] = []
    hook = model.get_output_embeddings().register_forward_hook(lambda m, i, o: rows.append(o.shape[1]))
    with torch.no_grad():
        full = forward_logits(model, part)
        window = forward_logits(model, part, answers_only=True)
    hook.remove()
    assert rows[1] < rows[0] == part["input_ids"].shape[1]
    assert window[0].shape[1] == window[1].shape[1] == rows[1] - 1
    # nothing counted is cut off, and the values at the kept positions are the full pass's
    assert int((window[1] != -100).sum()) == int((full[1] != -100).sum())
    torch.testing.assert_close(window[0], full[0][:, -window[0].shape[1]:], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sequence_nll(*window), sequence_nll(*full), rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(mean_nll(*window), mean_nll(*full), rtol=1e-6, atol=1e-6)

    class NoKeep(torch.nn.Module):  # a forward without logits_to_keep: every position, as before
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask)

    assert answer_window(NoKeep(), part["labels"]) == 0
    assert forward_logits(NoKeep(), part, answers_only=True)[0].shape == full[0].shape
