"""The quantize attack (bitsandbytes 4/8-bit reload) and the logit-lens probe, on the tiny model."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import bitsandbytes as bnb  # a dependency: the quantize attack needs it
import pytest
import torch

from obliviate.attacks import ATTACKS
from obliviate.attacks.base import AttackContext, resolve_attack
from obliviate.errors import ConfigError


def checksum(model) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# --- quantize ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bits", "layer_type", "storage"),
    [(4, "Linear4bit", torch.uint8), (8, "Linear8bitLt", torch.int8)],
)
def test_quantize_really_quantizes_scores_and_leaves_the_model(tiny, task, bits, layer_type, storage):
    from obliviate.models.io import LoadedModel
    from obliviate.runs import evaluate

    attack = resolve_attack("quantize", {"bits": bits})
    assert attack.label == f"quantize-{bits}bit"
    attack.check(task)
    before = checksum(tiny.model)
    out = attack.apply(AttackContext(model=tiny, task=task))
    assert checksum(tiny.model) == before  # the model under attack is untouched
    assert all(type(m).__name__ != layer_type for m in tiny.model.modules())

    q = out.model
    assert isinstance(q, LoadedModel) and q.model is not tiny.model and q.tokenizer is tiny.tokenizer
    assert q.meta == tiny.meta and out.task is task
    cls = getattr(bnb.nn, layer_type)
    layers = [m for m in q.model.modules() if isinstance(m, cls)]
    n_linear = tiny.model.config.num_hidden_layers * 7  # q, k, v, o, gate, up, down
    assert len(layers) == n_linear == out.details["quantized_modules"]
    assert all(m.weight.dtype == storage for m in layers)
    assert out.details["skipped"] == ["lm_head"]
    assert out.details["library"] == "bitsandbytes" and out.details["version"] == bnb.__version__
    assert out.details["bits"] == bits
    if bits == 4:
        assert out.details["scheme"] == "fp4" and out.details["compute_dtype"] == "fp32"
        assert q.model.lm_head.weight.dtype == torch.bfloat16  # the reference's torch_dtype=bfloat16

    if bits == 8:
        assert out.details["dtype"] == "float32"  # no dtype given: the checkpoint's (as the reference)
    maps = Path("/proc/self/maps")
    if maps.is_file():  # Linux: nothing stays memory-mapped from the deleted temporary folder
        assert "obliviate-quantize-" not in maps.read_text()

    # the temporary folder is gone, and the quantized model still scores
    record = evaluate(q, task, metrics="forget/prob", options={"max_items": 4, "precision": "fp32"})
    values = record.data["metrics"]["forget/prob"]["values"]
    assert len(values) == 4 and all(math.isfinite(v) and 0.0 < v <= 1.0 for v in values)


def test_quantized_model_scores_shared_prompts_like_whole_sequences(tiny, task):
    """The scorer's prompt-sharing KV-cache path works on bnb layers (or falls back by itself)."""
    from obliviate.scoring import ModelScorer

    q = resolve_attack("quantize", {"bits": 4}).apply(AttackContext(model=tiny, task=task)).model
    qa = task.forget[0]
    scorer = ModelScorer(q.model, q.tokenizer, q.formatter(), bf16=False)
    requests = [scorer.qa_request(qa.question, a) for a in (qa.answer, "something else", "a third answer")]
    shared = scorer.score(requests)
    whole = ModelScorer(q.model, q.tokenizer, q.formatter(), bf16=False, share_prompts=False).score(requests)
    assert scorer.share_prompts  # the cache path ran, no fallback was needed
    for a, b in zip(shared, whole):  # bf16 activations (the reference's dtype): rounding differs by path
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-2)


def test_quantize_nf4_and_options(tiny, task):
    out = resolve_attack("quantize", {"bits": 4, "scheme": "nf4"}).apply(AttackContext(model=tiny, task=task))
    layer = next(m for m in out.model.model.modules() if isinstance(m, bnb.nn.Linear4bit))
    assert layer.weight.quant_type == "nf4" and out.details["scheme"] == "nf4"
    with pytest.raises(ConfigError):
        resolve_attack("quantize", {"bits": 3})
    with pytest.raises(ConfigError):
        resolve_attack("quantize", {"scheme": "int4"})


def test_quantize_check_accepts_text_tasks_and_needs_bitsandbytes(task, monkeypatch):
    import dataclasses
    import sys

    from obliviate.data.records import Text

    text_task = dataclasses.replace(task, forget=[Text(text="a forget text", id="t0")])
    attack = ATTACKS.get("quantize")(ATTACKS.get("quantize").config_cls())
    attack.check(text_task)
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import now fails
    with pytest.raises(ConfigError, match="pip install bitsandbytes"):
        attack.check(task)


# --- logit lens -------------------------------------------------------------------------------


def test_logit_lens_final_layer_equals_the_models_own_logits(tiny):
    """The mechanism: the last readout is the model's own next-token distribution (left padding too)."""
    from obliviate.attacks.probe import logit_lens
    from obliviate.data.formatting import Encoded, collate

    f = tiny.formatter()
    prompts = [f.prompt_ids(f.prompt(q)) for q in ("Where was Ada born?", "What is the profession of the person?")]
    batch = collate([Encoded(p, p) for p in prompts], tiny.tokenizer.pad_token_id, side="left")
    lens = logit_lens(tiny.model, batch["input_ids"], batch["attention_mask"])
    assert lens.shape == (tiny.model.config.num_hidden_layers + 1, 2, tiny.model.config.vocab_size)
    assert torch.allclose(lens.exp().sum(-1), torch.ones(lens.shape[:2]), atol=1e-4)
    with torch.no_grad():
        for row, ids in enumerate(prompts):  # each prompt alone, unpadded
            own = torch.log_softmax(tiny.model(input_ids=torch.tensor([ids])).logits[0, -1].float(), dim=-1)
            assert torch.allclose(lens[-1, row], own, atol=1e-5)
    # an intermediate readout is the final norm + head of that layer's hidden state
    with torch.no_grad():
        ids = torch.tensor([prompts[0]])
        h = tiny.model(input_ids=ids, output_hidden_states=True).hidden_states[2][0, -1]
        manual = torch.log_softmax(tiny.model.lm_head(tiny.model.model.norm(h)), dim=-1)
    assert torch.allclose(lens[2, 0], manual, atol=1e-5)


def test_probe_values_are_binary_and_k_vocab_hits_everything(tiny, task):
    import dataclasses

    small = dataclasses.replace(task, forget=list(task.forget)[:6])
    attack = resolve_attack("probe", {})
    assert attack.config.k == 4 and attack.label == "probe"
    out = attack.apply(AttackContext(model=tiny, task=small))
    assert out.model is tiny and out.task is small
    entry = out.results["forget/logit_lens_topk"]
    assert set(entry["values"]) <= {0.0, 1.0} and len(entry["values"]) == 6
    assert entry["item_ids"] == [q.id for q in small.forget]
    assert entry["direction"] == "lower" and entry["aggregate"] == pytest.approx(sum(entry["values"]) / 6)
    n = tiny.model.config.num_hidden_layers + 1
    assert entry["extra"]["layers"] == list(range(n)) and len(entry["extra"]["per_layer_rate"]) == n

    vocab = tiny.model.config.vocab_size
    everything = resolve_attack("probe", {"k": vocab, "layers": "1,-1"}).apply(AttackContext(model=tiny, task=small))
    entry = everything.results["forget/logit_lens_topk"]
    assert entry["values"] == [1.0] * 6 and entry["aggregate"] == 1.0
    assert entry["extra"]["layers"] == [1, n - 1] and entry["extra"]["per_layer_rate"] == [1.0, 1.0]


def test_probe_options_fail_early(tiny, task):
    with pytest.raises(ConfigError):
        resolve_attack("probe", {"k": 0})
    with pytest.raises(ConfigError):
        resolve_attack("probe", {"layers": "a,b"})
    with pytest.raises(ConfigError, match="out of range"):
        resolve_attack("probe", {"layers": "99"}).apply(AttackContext(model=tiny, task=task))


def test_probe_refuses_an_unknown_architecture():
    from obliviate.attacks.probe import lens_parts

    class Odd(torch.nn.Module):
        def get_output_embeddings(self):
            return torch.nn.Linear(2, 2)

    with pytest.raises(ConfigError, match="final norm"):
        lens_parts(Odd())
