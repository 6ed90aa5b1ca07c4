"""An optional vLLM generation backend (``--eval.backend vllm``) for GPU machines.

Greedy generation is most of an evaluation's time on a GPU (ROUGE answers, MUSE continuations,
the attacks' re-evaluations), and vLLM's continuous batching and paged KV cache run it many
times faster than step-by-step decoding in transformers. Teacher-forced scoring stays with
:class:`~obliviate.scoring.model.ModelScorer` over the loaded model: it needs every position's
full distribution, which a generation engine is not built to return.

The mapping between our requests and the engine's is the part this module owns, and it is
tested on the CPU with a fake engine (``tests/unit/test_vllm_backend.py``): prompts go in as
the formatter's token ids (cut from the start to ``max_length``, as ModelScorer cuts them), one
greedy sample each (temperature 0) of at most ``max_new_tokens``; the engine stops at the end
token and at the stop strings, and the answer is its token ids up to the first end token,
decoded without special tokens and cut at the first stop string, exactly as ModelScorer decodes
its own. vLLM's kernels are not transformers', so a generation can differ where two tokens are
nearly tied; the run record keeps ``eval.options.backend`` with the precision.

The engine loads the weights from the model's folder (or hub id), not from memory: a model
changed in memory since it was loaded must be saved first. One engine per evaluation process;
under several launched processes, use one process and vLLM's own tensor parallelism instead.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from obliviate.errors import ConfigError
from obliviate.scoring.base import Scorer, ScoreRequest, TokenScores, VocabStats, truncate_at_stops
from obliviate.scoring.model import ModelScorer
from obliviate.scoring.shard import launched_processes

if TYPE_CHECKING:
    from vllm import LLM, SamplingParams

    from obliviate.models.io import LoadedModel


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def check_vllm_usable() -> None:
    """Raise ConfigError, before any model loads, where ``--eval.backend vllm`` cannot run."""
    if not vllm_installed():
        raise ConfigError(
            "--eval.backend vllm needs the vllm package (pip install vllm, on a machine with a "
            "CUDA GPU); or leave --eval.backend at hf"
        )
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "--eval.backend vllm needs a CUDA GPU, and this machine has none; use --eval.backend hf"
        )
    if launched_processes() > 1:
        raise ConfigError(
            "--eval.backend vllm runs in one process (vLLM batches and spreads a model over "
            "GPUs itself); run the evaluation without accelerate launch, or use --eval.backend "
            "hf to shard it over processes"
        )


def engine_source(loaded: LoadedModel) -> str:
    """Where the engine loads ``loaded``'s weights from: its folder, or the hub id it came from."""
    path = getattr(loaded, "path", None)
    source = str(getattr(loaded, "source", "") or "")
    if path:
        return str(path)
    if "/" in source:  # a hub id (a registered name or an in-memory model has no slash)
        return source
    raise ConfigError(
        f"the vLLM backend loads a model's weights from its folder, and {source or 'this model'} "
        "lives only in memory; save it (obliviate.models.io.save_model) and evaluate the "
        "folder, or use --eval.backend hf"
    )


def build_engine(source: str, *, bf16: bool, gpu_memory: float, seed: int = 0) -> LLM:
    """A vLLM engine over the model at ``source`` (bf16 or fp32 weights, as the
    scorer's precision)."""
    from vllm import LLM

    return LLM(
        model=source,
        dtype="bfloat16" if bf16 else "float32",
        seed=seed,
        gpu_memory_utilization=gpu_memory,
    )


def sampling_params(**kw: Any) -> SamplingParams:
    """vLLM's SamplingParams (a seam: the CPU test's fake engine takes the keywords as they are)."""
    from vllm import SamplingParams

    return SamplingParams(**kw)


class VLLMScorer(Scorer):
    """Scores with a :class:`ModelScorer`; generates greedily with a vLLM engine
    over the same model.

    Args:
        scorer: the scorer of the loaded model (its formatter, tokenizer and
            ``max_length`` are used).
        engine: anything with vLLM's ``LLM.generate(prompts, params, use_tqdm=False)``.
        params: builds the engine's sampling parameters from keywords (default:
            :func:`sampling_params`).
    """

    def __init__(
        self, scorer: ModelScorer, engine: Any, params: Callable[..., Any] | None = None
    ) -> None:
        self.scorer = scorer
        self.formatter = scorer.formatter
        self.engine = engine
        self.params = params
        # the precision recorded for the run (the engine is built in the same)
        self.bf16 = scorer.bf16
        self.n_generated = 0

    def score(
        self, requests: Sequence[ScoreRequest], *, vocab_stats: VocabStats = False
    ) -> list[TokenScores]:
        return self.scorer.score(requests, vocab_stats=vocab_stats)

    def generate(
        self, prompts: Sequence[str], *, max_new_tokens: int = 64, stop: Sequence[str] = ()
    ) -> list[str]:
        if not prompts:
            return []
        tokenizer = self.scorer.tokenizer
        ends = sorted({self.formatter.end_id, tokenizer.eos_token_id} - {None})
        inputs = [
            {"prompt_token_ids": self.formatter.prompt_ids(p)[-self.scorer.max_length :]}
            for p in prompts
        ]
        params = (self.params or sampling_params)(
            n=1,
            temperature=0.0,
            max_tokens=max_new_tokens,
            stop=list(stop) or None,
            stop_token_ids=ends,
        )
        outputs = self.engine.generate(inputs, params, use_tqdm=False)
        if len(outputs) != len(prompts):
            raise RuntimeError(f"the vLLM engine answered {len(outputs)} of {len(prompts)} prompts")
        texts = []
        for out in outputs:
            ids = list(out.outputs[0].token_ids)
            # the end token is not answer text
            cut = next((j for j, t in enumerate(ids) if t in ends), len(ids))
            texts.append(
                truncate_at_stops(tokenizer.decode(ids[:cut], skip_special_tokens=True), stop)
            )
        self.n_generated += len(prompts)
        return texts


def with_backend(
    scorer: Scorer, loaded: LoadedModel | None, backend: str, gpu_memory: float
) -> Scorer:
    """``scorer`` generating with ``backend``: as it is for ``hf``; for ``vllm``, a VLLMScorer whose
    engine loads ``loaded``'s weights from its folder (only a plain model's scorer can hand its
    generation over: an inference-time method's changes the distribution itself)."""
    if backend == "hf":
        return scorer
    if loaded is None or type(scorer) is not ModelScorer:
        raise ConfigError(
            f"--eval.backend {backend} generates with a model's own weights, and "
            f"{type(scorer).__name__} generates itself (an inference-time method or a "
            "guard): use --eval.backend hf"
        )
    return VLLMScorer(
        scorer, build_engine(engine_source(loaded), bf16=bool(scorer.bf16), gpu_memory=gpu_memory)
    )
