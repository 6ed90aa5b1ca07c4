"""The vLLM backend's real engine on the embedded SmolLM2, where vLLM and a CUDA GPU are present.

Skipped elsewhere (this project's CPU machines have neither); the request/response mapping is
tested everywhere with a fake engine in ``tests/unit/test_vllm_backend.py``. vLLM's kernels are
not transformers', so a greedy answer may differ where two tokens are nearly tied: the bound
asks that 9 in 10 answers agree word for word, in fp32 on both sides.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

vllm_missing = importlib.util.find_spec("vllm") is None
pytestmark = pytest.mark.skipif(
    vllm_missing or not torch.cuda.is_available(), reason="needs the vllm package and a CUDA GPU"
)


def test_vllm_generations_match_transformers_greedy_ones() -> None:
    from obliviate.models import load_model
    from obliviate.scoring import ModelScorer
    from obliviate.scoring.vllm import with_backend

    lm = load_model("smollm2-135m", device="cuda")
    hf = ModelScorer(lm.model, lm.tokenizer, lm.formatter(), bf16=False)
    engine = with_backend(hf, lm, "vllm", 0.4)
    questions = [
        "What is the capital of France?", "Who wrote Pride and Prejudice?", "What is the boiling point of water?",
        "Name a planet in the solar system.", "What language is spoken in Brazil?", "What is two plus two?",
        "Who painted the Mona Lisa?", "What is the largest ocean?", "What do bees make?", "What is ice made of?",
    ]
    prompts = [hf.formatter.prompt(q) for q in questions]
    want = hf.generate(prompts, max_new_tokens=24, stop=("\n",))
    got = engine.generate(prompts, max_new_tokens=24, stop=("\n",))
    assert sum(g == w for g, w in zip(got, want)) >= 9, list(zip(got, want))
    assert "Paris" in got[0]
