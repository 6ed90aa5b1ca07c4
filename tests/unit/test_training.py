"""The training loop: learning, exact resume, the divergence guard, label masking, configs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from obliviate.benchmarks.fictional import build_fictional
from obliviate.data.formatting import (
    IGNORE_INDEX,
    PromptFormatter,
    collate,
    encode_qa,
    encode_text,
    make_collate,
    sft_items,
)
from obliviate.methods.base import sft_loss
from obliviate.models import load_model
from obliviate.training.checkpoint import LAST
from obliviate.training.loop import LossOutput, TrainConfig, train


@pytest.fixture(scope="module")
def small():
    task = build_fictional(n_people=20)
    lm = load_model("tiny")
    fmt = PromptFormatter(lm.tokenizer)
    items = sft_items(task.retain[:48], fmt, 96)
    return lm.tokenizer, fmt, items


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_labels_cover_exactly_the_answer_and_one_end_token(small):
    tok, fmt, _ = small
    enc = encode_qa(fmt, "Where was Velma born?", "In Brennich.", 96)
    answer_ids = tok(fmt.answer("In Brennich."), add_special_tokens=False)["input_ids"]
    prompt_ids = fmt.prompt_ids(fmt.prompt("Where was Velma born?"))
    assert enc.input_ids == prompt_ids + answer_ids + [tok.eos_token_id]
    assert enc.labels == [IGNORE_INDEX] * len(prompt_ids) + answer_ids + [tok.eos_token_id]
    # The pad token equals the end token: padding must still be masked, the real end token not.
    assert tok.pad_token_id == tok.eos_token_id
    batch = collate([enc, encode_qa(fmt, "Q?", "A much longer answer than the other one.", 96)], tok.pad_token_id)
    row = batch["labels"][0]
    n = len(enc.input_ids)
    assert row[n - 1].item() == tok.eos_token_id
    assert (row[n:] == IGNORE_INDEX).all()
    assert (batch["attention_mask"][0, n:] == 0).all()


def test_truncation_cuts_the_prompt_and_keeps_the_answer(small):
    _, fmt, _ = small
    long_q = "Tell me about " + "the very long history of a town " * 20 + "?"
    enc = encode_qa(fmt, long_q, "Brennich Halloway.", 24)
    assert enc.truncated and len(enc.input_ids) == 24
    kept = [t for t in enc.labels if t != IGNORE_INDEX]
    assert len(kept) == len(fmt.answer_ids(fmt.answer("Brennich Halloway."))) + 1
    text = encode_text(fmt, "A biography.", 24)
    # Raw text under a tokenizer that adds no BOS (the tiny one, like SmolLM2's): no BOS is made
    # up; the first token is context and every later one is labelled.
    assert fmt.leading_special_ids() == []
    assert text.input_ids == fmt.answer_ids("A biography.")
    assert text.labels[0] == IGNORE_INDEX and all(t != IGNORE_INDEX for t in text.labels[1:])


def test_bos_follows_the_tokenizer_rule_everywhere():
    """A tokenizer that adds a BOS gets exactly one in every sequence; the text after it is all labelled."""
    from tokenizers import processors

    from obliviate.models.tiny import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    bos = tok.bos_token_id
    tok._tokenizer.post_processor = processors.TemplateProcessing(single=f"{tok.bos_token} $A", special_tokens=[(tok.bos_token, bos)])
    assert tok("hello")["input_ids"][0] == bos  # the tokenizer's own rule now adds a BOS
    fmt = PromptFormatter(tok, "plain")
    assert fmt.leading_special_ids() == [bos]
    text = encode_text(fmt, "A biography.", 64)
    assert text.input_ids == [bos] + fmt.answer_ids("A biography.")
    assert text.labels[0] == IGNORE_INDEX and all(t != IGNORE_INDEX for t in text.labels[1:])
    qa = encode_qa(fmt, "Who?", "Me.", 64)
    assert qa.input_ids[0] == bos and qa.input_ids.count(bos) == 1
    # A prompt that already starts with the BOS (as a chat template writes it) gets no second one.
    assert fmt.prompt_ids(tok.bos_token + "Question: hi").count(bos) == 1
    assert fmt.prompt_ids("Question: hi")[0] == bos  # a raw VerbMem / KnowMem prompt gets one


def test_tiny_model_learns_the_fictional_facts(tiny_trained):
    # The session fixture fine-tuned the tiny model; its loss must have fallen sharply.
    first = tiny_trained.log[0]["loss"]
    last = tiny_trained.log[-1]["loss"]
    assert first > 4.0
    assert last < 0.5, f"loss went from {first:.2f} to {last:.2f}"


def _run(items, tok, cfg, ckpt=None, resume=False, crash_at=None):
    torch.manual_seed(0)
    model = load_model("tiny").model
    calls = {"n": 0}

    def loss_fn(m, batch):
        calls["n"] += 1
        if crash_at is not None and calls["n"] == crash_at:
            raise RuntimeError("simulated crash")
        return sft_loss(m, batch)

    result = train(model, loss_fn, items, make_collate(tok.pad_token_id), cfg, checkpoint_dir=ckpt, resume=resume, progress=False)
    return model, result


def test_resume_after_a_crash_gives_the_same_weights(small, tmp_path):
    tok, _, items = small
    cfg = TrainConfig(lr=1e-3, max_steps=8, batch_size=8, grad_accum=2, warmup=2, save_every=3, bf16="off")
    ref_model, ref = _run(items, tok, cfg)
    ckpt = tmp_path / "ckpt"
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(items, tok, cfg, ckpt=ckpt, crash_at=2 * 5 + 1)  # dies during step 6; last checkpoint: step 3
    resumed_model, res = _run(items, tok, cfg, ckpt=ckpt, resume=True)
    assert res.steps == 8
    assert [round(r["loss"], 6) for r in res.log] == [round(r["loss"], 6) for r in ref.log]
    a, b = _weights(ref_model), _weights(resumed_model)
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"


def test_final_checkpoint_is_optional(small, tmp_path):
    """By default the last step is checkpointed; a caller that saves the model itself turns it off."""
    tok, _, items = small
    cfg = TrainConfig(lr=1e-3, max_steps=2, batch_size=8, bf16="off")
    collate = make_collate(tok.pad_token_id)
    train(load_model("tiny").model, sft_loss, items, collate, cfg, checkpoint_dir=tmp_path / "on", progress=False)
    assert json.loads((tmp_path / "on" / LAST / "state.json").read_text())["step"] == 2
    train(load_model("tiny").model, sft_loss, items, collate, cfg, checkpoint_dir=tmp_path / "off", progress=False,
          final_checkpoint=False)
    assert not (tmp_path / "off" / LAST).exists()


def test_divergence_guard_keeps_the_last_good_weights_and_checkpoint(small, tmp_path):
    tok, _, items = small
    cfg = TrainConfig(lr=1e-3, max_steps=6, batch_size=8, save_every=1, bf16="off")
    snapshots = []
    model = load_model("tiny").model
    calls = {"n": 0}

    def loss_fn(m, batch):
        calls["n"] += 1
        out = sft_loss(m, batch)
        snapshots.append(_weights(m))
        if calls["n"] == 3:
            return LossOutput(out.loss * float("nan"), {})
        return out

    res = train(model, loss_fn, items, make_collate(tok.pad_token_id), cfg, checkpoint_dir=tmp_path, progress=False)
    assert res.diverged and res.steps == 2
    assert "step 3" in res.stopped
    now = _weights(model)
    assert all(torch.equal(now[k], snapshots[2][k]) for k in now), "weights changed after the bad step"
    import json

    assert json.loads((tmp_path / LAST / "state.json").read_text())["step"] == 2


def test_bad_train_config_fails_before_training():
    from obliviate.config import build
    from obliviate.errors import ConfigError

    with pytest.raises(ConfigError, match="Did you mean 'lr'"):
        build(TrainConfig, {"lrr": 1e-4})
    with pytest.raises(ConfigError, match="train.lr: expected a number"):
        build(TrainConfig, {"lr": "fast"}, where="train")
    with pytest.raises(ConfigError, match="schedule"):
        build(TrainConfig, {"schedule": "cosin"})
    assert math.isclose(build(TrainConfig, {"lr": "3e-4"}).lr, 3e-4)


def test_length_grouping_keeps_each_epoch_a_permutation_and_cuts_padding(small):
    from obliviate.training.loop import GROUP_WINDOW, _micro_batches, group_by_length

    _, _, items = small
    lengths = [len(it["forget"].input_ids) for it in items]
    cfg = TrainConfig(batch_size=4, epochs=2)
    per_epoch = math.ceil(len(items) / 4)
    plain = [b for _, b in _micro_batches(len(items), cfg, 2 * per_epoch)]
    tagged = _micro_batches(len(items), cfg, 2 * per_epoch, lengths)
    grouped = [b for _, b in tagged]
    for epoch in range(2):
        assert [e for e, _ in tagged[epoch * per_epoch : (epoch + 1) * per_epoch]] == [epoch] * per_epoch
        batches = grouped[epoch * per_epoch : (epoch + 1) * per_epoch]
        assert sorted(i for b in batches for i in b) == list(range(len(items)))

    def padded(batches):
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    assert padded(grouped) < padded(plain)
    # Grouping only reorders inside windows of GROUP_WINDOW batches of the shuffled order.
    order = list(range(len(items)))
    window = GROUP_WINDOW * 4
    regrouped = group_by_length(order, lengths, 4)
    assert set(regrouped[:window]) == set(order[:window])
    assert [lengths[i] for i in regrouped[:window]] == sorted((lengths[i] for i in order[:window]), reverse=True)


def test_sharded_training_is_refused_before_any_step(small):
    """accelerate's FSDP and DeepSpeed (GPU only) are refused with what to do instead: the loop's
    divergence guard and the save read whole weights, which those engines shard."""
    from types import SimpleNamespace

    from accelerate.utils import DistributedType

    from obliviate.errors import ConfigError

    tok, _, items = small
    for kind in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        with pytest.raises(ConfigError, match="not supported yet.*--multi_gpu"):
            train(load_model("tiny").model, sft_loss, items, make_collate(tok.pad_token_id), TrainConfig(max_steps=1),
                  accelerator=SimpleNamespace(distributed_type=kind), progress=False)
