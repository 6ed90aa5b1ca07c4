"""The metric interface: what a metric needs, the forward passes it asks for, what it returns.

A metric runs in two phases so that every forward pass of an evaluation is batched and shared:

1. :meth:`Metric.requests` and :meth:`Metric.prompts` say which (prompt, answer) pairs must be
   scored and which prompts must be continued greedily. The evaluation gathers them from every
   metric and sends them to one :class:`~obliviate.scoring.CachedScorer` in as few calls as
   possible (one scoring call, one generation call per generation setting).
2. :meth:`Metric.compute` asks the same scorer again (every answer now comes from its cache) and
   returns a :class:`MetricResult`: one value per item and an aggregate.

Metrics never touch ``model.forward``; the one exception is the gradient-norm attack, which reads
:attr:`EvalContext.model`.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple

from obliviate.data.records import Record, record_kind
from obliviate.data.task import UnlearningTask
from obliviate.errors import ConfigError
from obliviate.metrics import RegisteredDescription
from obliviate.scoring import Scorer, ScoreRequest, TokenScores, VocabStats
from obliviate.types import Model

DIRECTIONS: dict[str, str] = {
    "higher": "higher is better",
    "lower": "lower is better: less of the forget data is left in the model",
    "closer_to_half": "0.5 is best: forget items look like never-seen items",
    "closer_to_zero": "0 is best: the model leaks as much as the retain-only model",
}
"""Every metric direction and what it means (what a report marks as best)."""

def is_forget_split(split: str | None) -> bool:
    """Whether a split holds data to be forgotten (``forget``, ``forget_bio``,
    ``knowmem_forget``...)."""
    return split is not None and "forget" in split


@dataclass
class EvalOptions:
    """Settings of an evaluation (``--eval.<field>`` on the command line)."""

    max_new_tokens: int = 64  # QA ROUGE generation length (TOFU used 200; 64 covers short answers, 3x faster)
    verbmem_max_new_tokens: int = 128  # MUSE VerbMem generation length; the reference is cut to as many tokens
    knowmem_max_new_tokens: int = 32  # MUSE KnowMem generation length
    knowmem_shots: int = 3  # few-shot examples in a KnowMem prompt (from SPLIT_icl when the task has it)
    k: float = 0.4  # fraction of lowest-scoring tokens averaged by Min-K% and Min-K%++ (MUSE, open-unlearning)
    gradnorm_items: int = 32  # members and non-members each scored by the GradNorm attack (0: skip it)
    max_items: int = 0  # evaluate at most this many items per split (0: all); for quick looks
    uncapped: str = ""  # comma-separated splits that max_items leaves whole (the demo's fast profile: real_authors)
    batch_size: int = 16  # requests per forward pass when the evaluation builds the scorer itself
    prompt_format: Literal["auto", "chat", "plain"] = "auto"  # how questions are shown: chat, plain or auto (the model's recorded format); match the fine-tuning
    end_token: Literal["drop", "keep"] = "drop"  # on QA, EM, ES, Min-K%, Min-K%++ and GradNorm leave out the end token's prediction (drop: open-unlearning's "ignore eos prediction") or count it (keep)
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # forward passes under bf16 autocast (auto: where the CPU/GPU has fast bf16) or in fp32; run.json records what ran
    backend: Literal["hf", "vllm"] = "hf"  # greedy generation by transformers (hf) or by a vLLM engine over the model's folder (vllm: a CUDA GPU and pip install vllm); scoring is always transformers'
    device_map: Literal["none", "auto", "balanced", "sequential"] = "none"  # a model given by name or folder: on this process's accelerator (none), or its layers spread over the GPUs, the CPU and disk (accelerate's big-model loading, for a model larger than one device)
    max_memory: str = ""  # with device_map, the most each device may hold: "0=20GiB,1=20GiB,cpu=60GiB" (empty: what is free)
    vllm_gpu_memory: float = 0.5  # fraction of the GPU's memory the vLLM engine may take (the scored model shares the GPU)

    def validate(self, task: Any = None) -> None:
        """Raise ConfigError on values that cannot work (with ``task``, also split names),
        before any model loads."""
        for name in (
            "max_new_tokens",
            "verbmem_max_new_tokens",
            "knowmem_max_new_tokens",
            "batch_size",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"eval.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("knowmem_shots", "gradnorm_items", "max_items"):
            if getattr(self, name) < 0:
                raise ConfigError(f"eval.{name} must be 0 or more, got {getattr(self, name)}")
        if not 0.0 < self.k <= 1.0:
            raise ConfigError(f"eval.k must be a fraction in (0, 1], got {self.k}; MUSE uses 0.4")
        if self.backend not in ("hf", "vllm"):
            raise ConfigError(f"eval.backend is hf or vllm, got {self.backend!r}")
        if not 0.0 < self.vllm_gpu_memory < 1.0:
            raise ConfigError(
                f"eval.vllm_gpu_memory must be a fraction in (0, 1), got {self.vllm_gpu_memory}"
            )
        self.memory_limits()
        if self.device_map != "none" and self.backend != "hf":
            raise ConfigError(
                "eval.device_map spreads a transformers model over devices; the vLLM backend "
                "places its own (use one or the other)"
            )
        if self.backend == "vllm":
            from obliviate.scoring.vllm import check_vllm_usable

            check_vllm_usable()
        if task is not None:
            unknown = [s for s in self.uncapped_splits() if s not in task.all_splits()]
            if unknown:
                raise ConfigError(
                    f"eval.uncapped names {', '.join(unknown)}, not a split of {task.name}; its "
                    f"splits are: {', '.join(task.all_splits())}"
                )

    def uncapped_splits(self) -> tuple[str, ...]:
        """The split names of ``uncapped``."""
        return tuple(s.strip() for s in self.uncapped.split(",") if s.strip())

    def memory_limits(self) -> dict[int | str, str] | None:
        """``max_memory`` as accelerate takes it (``{0: "20GiB", "cpu": "60GiB"}``), or None."""
        if not self.max_memory.strip():
            return None
        if self.device_map == "none":
            raise ConfigError(
                "eval.max_memory limits what eval.device_map places on each device; set "
                "--eval.device_map auto too"
            )
        limits: dict[int | str, str] = {}
        for part in self.max_memory.split(","):
            device, sep, size = (x.strip() for x in part.partition("="))
            size_ok = (
                re.fullmatch(r"\d+(\.\d+)?\s*([KMGT]i?B)?", size, flags=re.IGNORECASE) is not None
            )
            if not sep or not size_ok or not (device.isdigit() or device in ("cpu", "mps")):
                raise ConfigError(
                    "eval.max_memory takes DEVICE=SIZE pairs such as 0=20GiB,cpu=60GiB (a GPU "
                    f"index, cpu or mps), got {part!r}"
                )
            limits[int(device) if device.isdigit() else device] = size
        return limits


class GenRequest(NamedTuple):
    """A prompt to continue greedily, with its token limit and stop strings."""

    prompt: str
    max_new_tokens: int
    stop: tuple[str, ...] = ()


@dataclass
class MetricResult:
    """What a metric returns.

    Attributes:
        values: one value per item (empty for corpus-level metrics such as forget quality).
        aggregate: the number a table shows.
        item_ids: the id of each value's item.
        extra: anything else worth keeping (inputs of derived metrics, conventions).
        generations: item id -> generated text, for metrics that generate.
    """

    values: list[float]
    aggregate: float
    item_ids: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    generations: dict[str, str] | None = None


class MetricSkipped(Exception):
    """Raised by :meth:`Metric.compute` when the metric cannot run here (the reason is recorded)."""


@dataclass
class EvalContext:
    """What metrics read: the task, the scorer, the options and the results so far.

    Attributes:
        task: the benchmark task.
        scorer: the scorer (a CachedScorer during an evaluation, so repeated asks are free).
        options: evaluation settings.
        reference: the reference (retain-only) model's run data, or None.
        results: stored entries of the metrics computed so far (key -> entry, as in run.json).
        model: the model itself, for the gradient-norm attack only (None: that attack is skipped).
    """

    task: UnlearningTask
    scorer: Scorer
    options: EvalOptions = field(default_factory=EvalOptions)
    reference: dict[str, Any] | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    model: Model | None = None

    def items(self, split: str) -> list[Record]:
        """The records of ``split``, capped at ``options.max_items``."""
        records = self.task.split(split)
        cap = self.options.max_items if split not in self.options.uncapped_splits() else 0
        return records[:cap] if cap else list(records)

    def score(
        self, requests: Sequence[ScoreRequest], *, vocab_stats: VocabStats = False
    ) -> list[TokenScores]:
        """Score requests (cached: the evaluation scored them all beforehand)."""
        return self.scorer.score(requests, vocab_stats=vocab_stats) if requests else []

    def generate(self, requests: Sequence[GenRequest]) -> list[str]:
        """Generate for requests that may differ in token limit and stop strings."""
        out: list[str] = [""] * len(requests)
        for (limit, stop), idx in group_generations(requests).items():
            texts = self.scorer.generate(
                [requests[i].prompt for i in idx], max_new_tokens=limit, stop=stop
            )
            for i, text in zip(idx, texts):
                out[i] = text
        return out


def group_generations(
    requests: Sequence[GenRequest],
) -> dict[tuple[int, tuple[str, ...]], list[int]]:
    """Indices of ``requests`` grouped by (max_new_tokens, stop strings), in first-seen order."""
    groups: dict[tuple[int, tuple[str, ...]], list[int]] = {}
    for i, r in enumerate(requests):
        groups.setdefault((r.max_new_tokens, tuple(r.stop)), []).append(i)
    return groups


def reference_entry(reference: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    """The stored entry of metric ``key`` in a reference run, or None."""
    if not reference:
        return None
    entry = reference.get("metrics", {}).get(key)
    return entry if isinstance(entry, dict) else None


class Metric(abc.ABC):
    """A metric: a name, a direction, what it needs, and the two phases described above.

    Subclasses set the class attributes and implement :meth:`compute` (plus :meth:`requests` and
    :meth:`prompts` when they need forward passes). An instance is bound to one split; the key it
    is stored under is ``"<split>/<name>"`` (or ``"<name>"`` for metrics without a split).

    Args:
        split: the split it evaluates (None for corpus-level metrics that pick their inputs).
    """

    name: ClassVar[str] = ""
    description = RegisteredDescription()  # one line: what the number means (its METRICS help)
    default_direction: ClassVar[str] = "higher"
    kinds: ClassVar[tuple[str, ...]] = ("qa",)  # record kinds the split must hold
    takes_split: ClassVar[bool] = True
    vocab_stats: ClassVar[bool] = False  # needs the vocabulary moments of Min-K%++
    uses_reference: ClassVar[bool] = False  # reads the reference run's results
    # A reference-relative metric's value for the reference model itself (forget quality 1,
    # privleak 0): the goal that reports show, whatever the retain-only run stored
    # without a reference.
    self_value: ClassVar[float | None] = None

    def __init__(self, split: str | None = None) -> None:
        if self.takes_split and not split:
            raise ConfigError(
                f"metric {self.name!r} needs a split: write it as "
                f"SPLIT/{self.name}, e.g. forget/{self.name}"
            )
        if not self.takes_split and split:
            raise ConfigError(
                f"metric {self.name!r} takes no split: write it as "
                f"{self.name}, not {split}/{self.name}"
            )
        self.split = split

    @property
    def key(self) -> str:
        """Where the result is stored in run.json: ``split/name`` or ``name``."""
        return f"{self.split}/{self.name}" if self.split else self.name

    @property
    def direction(self) -> str:
        """Which way is better (a key of :data:`DIRECTIONS`)."""
        return self.default_direction

    def splits(self, task: UnlearningTask) -> list[str]:
        """The splits this metric reads."""
        return [self.split] if self.split else []

    def depends(self, task: UnlearningTask) -> list[str]:
        """Keys of other metrics whose stored results :meth:`compute` reads."""
        return []

    def missing(self, task: UnlearningTask, reference: dict[str, Any] | None) -> str | None:
        """Why this metric cannot run on ``task`` (None: it can). A plan skips such metrics."""
        splits = task.all_splits()
        for split in self.splits(task):
            records = splits.get(split)
            if not records:
                return f"the task has no {split!r} split (or it is empty)"
            kind = record_kind(records[0])
            if kind not in self.kinds:
                return (
                    f"split {split!r} holds {kind} records; {self.name} needs "
                    f"{' or '.join(self.kinds)}"
                )
        return None

    def check_reference(self, task: UnlearningTask, reference: dict[str, Any]) -> None:  # noqa: B027 (an optional hook: nothing by default)
        """Raise ConfigError if a given reference lacks what this metric reads from it."""

    def requests(self, ctx: EvalContext) -> list[ScoreRequest]:
        """The (prompt, answer) pairs to score."""
        return []

    def prompts(self, ctx: EvalContext) -> list[GenRequest]:
        """The prompts to continue greedily."""
        return []

    @abc.abstractmethod
    def compute(self, ctx: EvalContext) -> MetricResult:
        """The result, from the scorer's cache and ``ctx.results``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key!r})"


def record_request(scorer: Scorer, record: Record) -> ScoreRequest:
    """The request that scores a record as a whole: a QA's answer, or a Text's full text."""
    if record_kind(record) == "qa":
        return scorer.qa_request(record.question, record.answer)  # type: ignore[union-attr]
    return scorer.text_request(record.text)  # type: ignore[union-attr]


def drops_end(ctx: EvalContext, request: ScoreRequest) -> bool:
    """Whether a metric that follows open-unlearning's ``[:-1]`` leaves out this
    request's end token.

    Only a request that scores an end token (a QA answer) has one to leave out, and only when
    ``eval.end_token`` is ``drop`` (the default).
    """
    return request.add_end and ctx.options.end_token == "drop"


def answer_scores(ctx: EvalContext, request: ScoreRequest, scores: TokenScores) -> TokenScores:
    """``scores`` without the end token's position when :func:`drops_end` says so."""
    return scores.without_last() if drops_end(ctx, request) else scores


def end_token_note(ctx: EvalContext) -> str:
    """What run.json records of the end token (the ``end_token`` extra of the metrics above)."""
    return "dropped on QA (open-unlearning)" if ctx.options.end_token == "drop" else "counted"


def record_text(record: Record) -> str:
    """The text a record's score covers (a QA's answer, a Text's text)."""
    return record.answer if record_kind(record) == "qa" else record.text  # type: ignore[union-attr]


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (0.0 for an empty list)."""
    return float(sum(values) / len(values)) if values else 0.0
