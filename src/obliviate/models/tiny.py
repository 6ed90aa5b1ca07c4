"""``tiny``: a deterministic small random Llama with a tokenizer built in process.

It exists for tests and quick experiments: with 4 layers, width 256 and a byte-level BPE vocabulary
of about 1k tokens trained on the fictional benchmark's own text, it learns the fictional facts in
seconds on a CPU. Everything is seeded, so two calls return identical weights.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import TYPE_CHECKING

from obliviate.types import Model, Tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

TINY_VOCAB = 1024
TINY_SEED = 1234


CORPUS_RESOURCE = "tiny_corpus.txt"  # in the obliviate.data package, one line per text


def _corpus() -> list[str]:
    """The tokenizer's training text: the fictional benchmark's and TOFU's general-knowledge text.

    It ships as ``obliviate/data/tiny_corpus.txt`` so that the models layer does not import the
    benchmarks layer; ``tests/unit/test_layers.py`` checks that the file equals the text generated
    from the benchmarks and rewrites it when run as a script.
    """
    text = resources.files("obliviate.data").joinpath(CORPUS_RESOURCE).read_text(encoding="utf-8")
    return text.split("\n")[:-1]


@functools.lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB,
        special_tokens=["<|endoftext|>", "<|bos|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return tok.to_str()


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """The tiny model's tokenizer. Its pad token equals its end token, like SmolLM2's."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        eos_token="<|endoftext|>",
        bos_token="<|bos|>",
        pad_token="<|endoftext|>",
    )
    tok.model_max_length = 512
    return tok


def build_tiny(
    num_layers: int = 4, hidden_size: int = 256, num_heads: int = 4, seed: int = TINY_SEED
) -> tuple[Model, Tokenizer]:
    """Build the tiny Llama and its tokenizer, deterministically."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
