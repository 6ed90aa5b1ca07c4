"""The Scorer: the one interface through which every metric and attack judges a model.

A Scorer answers two questions, in batches:

- :meth:`Scorer.score`: the per-token log-probabilities of an answer given a prompt (teacher
  forcing), with the teacher-forced argmax tokens and, on request, the per-position mean and
  variance of log p over the vocabulary that Min-K%++ needs;
- :meth:`Scorer.generate`: greedy continuations of prompts, with a token limit and stop strings.

:class:`ModelScorer` implements it for a plain Hugging Face causal LM; inference-time methods
(``guards/``) implement it too, so metrics never call ``model.forward`` themselves.
:class:`CachedScorer` wraps any Scorer so that a (prompt, answer) pair is scored once however many
metrics ask for it.
"""

from obliviate.scoring.base import (
    CachedScorer,
    Scorer,
    ScoreRequest,
    TokenScores,
    VocabStats,
    scorer_precision,
    truncate_at_stops,
)
from obliviate.scoring.model import ModelScorer, cache_keyword, output_cache

__all__ = [
    "CachedScorer",
    "ModelScorer",
    "Scorer",
    "ScoreRequest",
    "TokenScores",
    "VocabStats",
    "cache_keyword",
    "output_cache",
    "scorer_precision",
    "truncate_at_stops",
]
