"""The frozen prefix (training.prefix): the fixed lowest blocks run once, the training sees the same numbers."""

from __future__ import annotations

import torch

from obliviate.benchmarks.fictional import build_fictional
from obliviate.data.formatting import PromptFormatter, make_collate, sft_items
from obliviate.methods.base import sft_loss
from obliviate.models import load_model
from obliviate.models.structure import decoder_blocks
from obliviate.training.loop import TrainConfig, train
from obliviate.training.prefix import PREFIX_KEY, FrozenPrefix, frozen_prefix_blocks


def _setup(n_fixed: int = 2):
    loaded = load_model("tiny")
    model = loaded.model
    model.get_input_embeddings().weight.requires_grad_(False)
    model.get_output_embeddings().weight.requires_grad_(False)
    for block in decoder_blocks(model)[:n_fixed]:
        block.requires_grad_(False)
    task = build_fictional(n_people=6, seed=0)
    items = sft_items(task.forget + task.retain[:10], PromptFormatter(loaded.tokenizer, "plain"), 96)
    return loaded, model, items


def _loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    out = sft_loss(model, batch)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return float(out.loss.detach()), grads


def test_training_on_the_prefix_gives_the_whole_model_s_loss_and_gradients():
    loaded, model, items = _setup()
    pad = loaded.tokenizer.pad_token_id
    assert frozen_prefix_blocks(model, 2) == 2
    prefix = FrozenPrefix(2, bf16=False, max_length=96, batch_size=3)  # other batches than training's: padding must not matter
    with_states = prefix.attach(model, items, pad)
    assert with_states is not None and all(it[PREFIX_KEY].shape[0] == len(it["forget"].input_ids) for it in with_states)
    order = sorted(range(len(items)), key=lambda i: -len(items[i]["forget"].input_ids))[:8]  # unequal lengths: padded
    plain = make_collate(pad)([items[i] for i in order])
    cached = prefix.collate(make_collate(pad))([with_states[i] for i in order])
    assert torch.equal(cached["forget"]["input_ids"], plain["forget"]["input_ids"])
    model.train()
    loss, grads = _loss_and_grads(model, plain)
    with prefix.skipping(model):
        loss_p, grads_p = _loss_and_grads(model, cached)
    assert all("forward" not in vars(b) for b in decoder_blocks(model))  # restored on exit
    assert abs(loss - loss_p) < 1e-5 * max(1.0, abs(loss))
    assert grads.keys() == grads_p.keys() and grads
    for name in grads:
        torch.testing.assert_close(grads_p[name], grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_the_fixed_blocks_do_not_run_while_skipping():
    loaded, model, items = _setup()
    prefix = FrozenPrefix(2, bf16=False, max_length=96)
    with_states = prefix.attach(model, items[:4], loaded.tokenizer.pad_token_id)
    batch = prefix.collate(make_collate(loaded.tokenizer.pad_token_id))(with_states)
    ran = []
    blocks = decoder_blocks(model)
    for i, block in enumerate(blocks):
        block.self_attn.register_forward_hook(lambda *a, i=i: ran.append(i))
    with prefix.skipping(model), torch.no_grad():
        sft_loss(model, batch)
    assert ran == list(range(2, len(blocks)))


def test_a_trained_embedding_a_trained_block_or_dropout_runs_the_whole_model():
    loaded, model, _ = _setup()
    assert frozen_prefix_blocks(model, 0) == 0
    assert frozen_prefix_blocks(model, len(decoder_blocks(model))) == 0  # nothing left to train
    assert frozen_prefix_blocks(model, 3) == 0  # block 2 trains
    model.get_input_embeddings().weight.requires_grad_(True)
    assert frozen_prefix_blocks(model, 2) == 0
    model.get_input_embeddings().weight.requires_grad_(False)
    model.config.attention_dropout = 0.1
    for block in decoder_blocks(model):
        block.self_attn.attention_dropout = 0.1
    assert frozen_prefix_blocks(model, 2) == 0


def test_training_with_the_prefix_ends_at_the_weights_of_training_without():
    cfg = TrainConfig(lr=3e-3, epochs=2, batch_size=4, bf16="off", weight_decay=0.0)
    results = []
    for use_prefix in (False, True):
        loaded, model, items = _setup()
        collate = make_collate(loaded.tokenizer.pad_token_id)
        prefix = FrozenPrefix(2, bf16=False, max_length=96)
        if use_prefix:
            items, collate = prefix.attach(model, items, loaded.tokenizer.pad_token_id), prefix.collate(collate)
        lengths = [len(it["forget"].input_ids) for it in items]
        if use_prefix:
            with prefix.skipping(model):
                res = train(model, sft_loss, items, collate, cfg, progress=False, lengths=lengths)
        else:
            res = train(model, sft_loss, items, collate, cfg, progress=False, lengths=lengths)
        results.append(({n: p.detach().clone() for n, p in model.state_dict().items()}, res.log))
    (plain, log_plain), (cached, log_cached) = results
    assert plain.keys() == cached.keys()  # the same model, every weight named as before
    for a, b in zip(log_plain, log_cached):
        assert abs(a["loss"] - b["loss"]) < 1e-4 * max(1.0, a["loss"])
    for name in plain:
        torch.testing.assert_close(cached[name], plain[name], rtol=1e-3, atol=1e-5, msg=name)


def test_cpu_training_attends_with_matmuls_for_short_sequences_and_restores_the_kernel():
    from obliviate.training.attention import MAX_EAGER_LENGTH, training_attention

    loaded, model, items = _setup()
    assert model.config._attn_implementation == "sdpa"
    batch = make_collate(loaded.tokenizer.pad_token_id)(items[:6])
    model.train()
    loss, grads = _loss_and_grads(model, batch)
    with training_attention(model, "cpu", 96, bf16=False) as switched:  # fp32: sdpa is the faster one
        assert switched is None and model.config._attn_implementation == "sdpa"
    with training_attention(model, "cpu", 96, bf16=True) as switched:
        assert switched == "eager" and model.config._attn_implementation == "eager"
        loss_e, grads_e = _loss_and_grads(model, batch)
    assert model.config._attn_implementation == "sdpa"
    assert abs(loss - loss_e) < 1e-5 * max(1.0, loss)  # the same function, rounded otherwise
    for name in grads:
        torch.testing.assert_close(grads_e[name], grads[name], rtol=1e-4, atol=1e-6, msg=name)
    with training_attention(model, "cpu", MAX_EAGER_LENGTH + 1, bf16=True) as switched:  # long sequences: [T, T] matrices
        assert switched is None and model.config._attn_implementation == "sdpa"
    with training_attention(model, "meta", 96, bf16=True) as switched:  # not the CPU: the model's own kernel
        assert switched is None
    collate = make_collate(loaded.tokenizer.pad_token_id)
    for bf16, kernel in (("on", "eager"), ("off", None)):
        cfg = TrainConfig(lr=1e-3, max_steps=1, batch_size=4, bf16=bf16)
        assert train(model, sft_loss, items, collate, cfg, progress=False).attention == kernel
    assert model.config._attn_implementation == "sdpa"


def test_states_past_the_memory_bound_train_the_whole_model(monkeypatch):
    import obliviate.training.prefix as prefix_module

    loaded, model, items = _setup()
    monkeypatch.setattr(prefix_module, "MAX_BYTES", 1000)
    assert FrozenPrefix(2, bf16=False, max_length=96).attach(model, items, loaded.tokenizer.pad_token_id) is None
