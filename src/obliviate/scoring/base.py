"""The Scorer interface, its request and result types, and the cache that wraps any Scorer."""

from __future__ import annotations

import abc
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from obliviate.data.formatting import PromptFormatter


class ScoreRequest(NamedTuple):
    """A prompt (already formatted) and the answer text that follows it.

    ``add_end`` scores the end token after the answer too (QA answers); raw text leaves it off.
    """

    prompt: str
    answer: str
    add_end: bool = True


@dataclass
class TokenScores:
    """Teacher-forced scores of one answer.

    Attributes:
        logprobs: log p(y_t | x, y_<t) for each answer token (end token included when scored).
        token_ids: the answer token ids.
        argmax_ids: the model's most likely token at each answer position.
        mean: per position, E_p[log p] over the vocabulary (only where
            ``vocab_stats`` asked for it).
        var: per position, Var_p[log p] over the vocabulary (likewise).
    """

    logprobs: np.ndarray
    token_ids: np.ndarray
    argmax_ids: np.ndarray
    mean: np.ndarray | None = None
    var: np.ndarray | None = None

    @property
    def mean_logprob(self) -> float:
        """Mean log-probability per token (minus the average NLL)."""
        return float(self.logprobs.mean()) if self.logprobs.size else 0.0

    @property
    def total_logprob(self) -> float:
        return float(self.logprobs.sum())

    def without_last(self) -> TokenScores:
        """These scores without the last position (a QA answer's end token); unchanged if
        only one is left."""
        if self.logprobs.size <= 1:
            return self
        cut = slice(0, self.logprobs.size - 1)
        return TokenScores(
            self.logprobs[cut],
            self.token_ids[cut],
            self.argmax_ids[cut],
            None if self.mean is None else self.mean[cut],
            None if self.var is None else self.var[cut],
        )


VocabStats = bool | Collection[ScoreRequest]
"""Which requests get the vocabulary moments: all (True), none (False) or those in a collection."""


def wants_stats(vocab_stats: VocabStats, request: ScoreRequest) -> bool:
    """Whether ``request`` gets the vocabulary moments under ``vocab_stats``."""
    if isinstance(vocab_stats, bool):
        return vocab_stats
    return request in vocab_stats


class Scorer(abc.ABC):
    """Interface: score answers and generate greedily. Subclasses implement both methods."""

    formatter: PromptFormatter

    @abc.abstractmethod
    def score(
        self, requests: Sequence[ScoreRequest], *, vocab_stats: VocabStats = False
    ) -> list[TokenScores]:
        """Per-token answer log-probabilities, one per request, and the vocabulary
        moments (``mean``, ``var``) of every request (True) or of those in a collection
        (a scorer may give more)."""

    @abc.abstractmethod
    def generate(
        self, prompts: Sequence[str], *, max_new_tokens: int = 64, stop: Sequence[str] = ()
    ) -> list[str]:
        """Greedy continuations of the prompts."""

    # Conveniences shared by every implementation.
    def qa_request(self, question: str, answer: str) -> ScoreRequest:
        """The request that scores ``answer`` as the reply to ``question`` in the model's format."""
        return ScoreRequest(self.formatter.prompt(question), self.formatter.answer(answer), True)

    def text_request(self, text: str) -> ScoreRequest:
        """The request that scores a whole text as language modelling."""
        return ScoreRequest("", text, False)


def truncate_at_stops(text: str, stops: Sequence[str]) -> str:
    """Cut ``text`` at the first occurrence of any stop string."""
    cut = len(text)
    for s in stops:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


def scorer_precision(scorer: Scorer) -> str:
    """The precision the scorer's forward passes run in: ``bf16`` (autocast), ``fp32``, or as the
    scorer of an inference-time method decides (``scorer``)."""
    inner = getattr(scorer, "inner", scorer)
    bf16 = getattr(inner, "bf16", None)
    return "scorer" if bf16 is None else ("bf16" if bf16 else "fp32")


class CachedScorer(Scorer):
    """Memoizes another Scorer, so a (prompt, answer) pair is scored once per model.

    Requests are batched: :meth:`score` sends only the requests not yet seen to the inner scorer,
    in one call. A request first scored without vocabulary statistics is scored again if a
    later call needs them.
    """

    def __init__(self, inner: Scorer) -> None:
        self.inner = inner
        self.formatter = inner.formatter
        self._scores: dict[ScoreRequest, TokenScores] = {}
        self._gens: dict[tuple[str, int, tuple[str, ...]], str] = {}

    def score(
        self, requests: Sequence[ScoreRequest], *, vocab_stats: VocabStats = False
    ) -> list[TokenScores]:
        missing = []
        seen: set[ScoreRequest] = set()
        for r in requests:
            have = self._scores.get(r)
            if (
                have is None or (wants_stats(vocab_stats, r) and have.mean is None)
            ) and r not in seen:
                missing.append(r)
                seen.add(r)
        if missing:
            stats = (
                vocab_stats
                if isinstance(vocab_stats, bool)
                else {r for r in missing if r in vocab_stats}
            )
            for r, s in zip(missing, self.inner.score(missing, vocab_stats=stats)):
                self._scores[r] = s
        return [self._scores[r] for r in requests]

    def generate(
        self, prompts: Sequence[str], *, max_new_tokens: int = 64, stop: Sequence[str] = ()
    ) -> list[str]:
        stops = tuple(stop)
        missing = list(
            dict.fromkeys(p for p in prompts if (p, max_new_tokens, stops) not in self._gens)
        )
        if missing:
            for p, g in zip(
                missing, self.inner.generate(missing, max_new_tokens=max_new_tokens, stop=stops)
            ):
                self._gens[(p, max_new_tokens, stops)] = g
        return [self._gens[(p, max_new_tokens, stops)] for p in prompts]
