"""The vLLM generation backend's request/response mapping, on the CPU with a fake engine.

The fake engine decodes greedily with the tiny model itself, one token at a time without a KV
cache, and follows vLLM's rules for what it returns: token ids up to and including a stop token
or the token that completes a stop string, at most ``max_tokens``. So the VLLMScorer's answers
must equal ModelScorer's own greedy answers exactly: any difference is the mapping's (prompt
ids, truncation, end tokens, stop strings, order). The engine itself runs in
``tests/integration/test_vllm_gpu.py`` where vLLM and a GPU are present.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

import obliviate as ob
from obliviate.errors import ConfigError
from obliviate.scoring import ModelScorer
from obliviate.scoring import vllm as backend


class FakeEngine:
    """vLLM's ``LLM.generate`` over a transformers model, with vLLM's stopping rules."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.calls: list[tuple[list[dict], dict]] = []

    def generate(self, prompts: list[dict], params: dict, use_tqdm: bool = True) -> list[Any]:
        assert use_tqdm is False
        self.calls.append((prompts, params))
        assert params["n"] == 1 and params["temperature"] == 0.0
        outs = []
        for p in prompts:
            ids, new = list(p["prompt_token_ids"]), []
            for _ in range(params["max_tokens"]):
                with torch.inference_mode():
                    t = int(self.model(input_ids=torch.tensor([ids + new])).logits[0, -1].argmax())
                new.append(t)
                if t in params["stop_token_ids"]:
                    break
                text = self.tokenizer.decode(new, skip_special_tokens=True)
                if any(s in text for s in params["stop"] or ()):
                    break
            outs.append(SimpleNamespace(outputs=[SimpleNamespace(token_ids=tuple(new))]))
        return outs


def _params(**kw: Any) -> dict:
    return kw


def test_engine_answers_map_back_as_model_scorer_greedy_ones(tiny_trained: Any) -> None:
    model = tiny_trained.model()
    hf = ModelScorer(model, tiny_trained.tokenizer, bf16=False, max_length=24, generate_batch_size=3)
    engine = FakeEngine(model, tiny_trained.tokenizer)
    scorer = backend.VLLMScorer(hf, engine, params=_params)
    records = tiny_trained.task.forget[:4] + tiny_trained.task.retain[:3]
    prompts = [hf.formatter.prompt(r.question) for r in records]
    prompts.append(hf.formatter.prompt(" ".join(r.question for r in records)))  # longer than max_length: cut
    for stop in ((), (".",), (" was", "\n")):
        want = hf.generate(prompts, max_new_tokens=12, stop=stop)
        got = scorer.generate(prompts, max_new_tokens=12, stop=stop)
        assert got == want
    assert any(w for w in want) and len(set(want)) > 3  # real, varied answers were compared
    inputs, params = engine.calls[-1]
    assert [len(p["prompt_token_ids"]) for p in inputs][-1] == 24  # cut from the start, as ModelScorer cuts
    assert params["max_tokens"] == 12 and params["stop"] == [" was", "\n"]
    assert hf.formatter.end_id in params["stop_token_ids"]
    assert scorer.score([hf.qa_request("Q?", "A.")])[0].logprobs.tolist() == hf.score([hf.qa_request("Q?", "A.")])[0].logprobs.tolist()


def test_evaluation_with_the_vllm_backend_hands_generation_to_the_engine(
    tiny_trained: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from obliviate.models.io import load_model, save_model

    save_model(tiny_trained.model(), tiny_trained.tokenizer, tmp_path / "m")
    built: list[tuple[str, bool]] = []

    def fake_build(source: str, *, bf16: bool, gpu_memory: float, seed: int = 0) -> FakeEngine:
        built.append((source, bf16))
        loaded = load_model(source)
        return FakeEngine(loaded.model, loaded.tokenizer)

    monkeypatch.setattr(backend, "check_vllm_usable", lambda: None)
    monkeypatch.setattr(backend, "build_engine", fake_build)
    monkeypatch.setattr(backend, "sampling_params", _params)
    keys = "forget/rouge,retain/rouge,forget/prob"
    opts = {"precision": "fp32", "max_items": 6, "max_new_tokens": 16}
    hf = ob.evaluate(tmp_path / "m", tiny_trained.task, metrics=keys, options=opts, out=tmp_path / "hf")
    vl = ob.evaluate(tmp_path / "m", tiny_trained.task, metrics=keys, options={**opts, "backend": "vllm"}, out=tmp_path / "vl")
    assert built == [(str((tmp_path / "m").resolve()), False)]
    for key in keys.split(","):
        assert vl.per_item(key) == hf.per_item(key)
    assert vl.all_generations == hf.all_generations and vl.all_generations
    assert vl.data["eval"]["options"]["backend"] == "vllm" and vl.data["eval"]["precision"] == "fp32"
    with pytest.raises(ConfigError, match="other evaluation options"):  # resuming with the other backend refuses
        ob.evaluate(tmp_path / "m", tiny_trained.task, metrics=keys, options=opts, out=tmp_path / "vl")


def test_the_vllm_backend_refuses_what_it_cannot_run(tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "vllm_installed", lambda: False)
    with pytest.raises(ConfigError, match="pip install vllm"):
        ob.evaluate("tiny", "fictional", metrics="forget/rouge", options={"backend": "vllm"})
    monkeypatch.setattr(backend, "vllm_installed", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        ob.evaluate("tiny", "fictional", metrics="forget/rouge", options={"backend": "vllm"})
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="lives only in memory"):
        backend.with_backend(ModelScorer(tiny.model, tiny.tokenizer), tiny, "vllm", 0.5)
    with pytest.raises(ConfigError, match="generates itself"):
        backend.with_backend(backend.VLLMScorer(ModelScorer(tiny.model, tiny.tokenizer), None), tiny, "vllm", 0.5)
    with pytest.raises(ConfigError, match="vllm_gpu_memory"):
        ob.evaluate("tiny", "fictional", metrics="forget/rouge", options={"vllm_gpu_memory": 1.5})
