"""Sharded scoring: each process runs its own batches, shaped as one process would shape them.

Two shards are simulated in one process: each shard's ``gather`` records what it computed and
returns the union of both shards' results (the second shard runs after the first has recorded).
The real collective runs in ``tests/integration/test_distributed.py`` with two processes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from obliviate.scoring import ModelScorer
from obliviate.scoring.shard import Shard


class _Partial(dict):
    """What the first simulated shard gathers: the other shard's results are not in yet (None)."""

    def __missing__(self, key: int) -> None:
        return None


class _Recorded(Shard):
    """A shard whose gather merges what the shards simulated so far computed."""

    def __init__(self, rank: int, world: int, book: list[dict[int, Any]]) -> None:
        super().__init__(rank, world)
        object.__setattr__(self, "book", book)

    def gather(self, local: dict[int, Any]) -> dict[int, Any]:
        self.book.append(dict(local))
        merged: dict[int, Any] = _Partial()
        for part in self.book:
            merged.update(part)
        return merged


def _requests(scorer: ModelScorer, task: Any) -> list[Any]:
    out = []
    for r in task.forget[:9]:  # shared prompts (question with its paraphrase and perturbed answers)
        out += [scorer.qa_request(r.question, a) for a in [r.answer, r.paraphrased_answer, *r.perturbed_answers[:2]]]
    out += [scorer.text_request(r.answer) for r in task.retain[:7]]  # whole sequences
    return out


def test_two_shards_split_the_batches_and_gather_the_single_process_numbers(tiny: Any, task: Any) -> None:
    one = ModelScorer(tiny.model, tiny.tokenizer, batch_size=4, generate_batch_size=4, bf16=False)
    requests = _requests(one, task)
    expected = one.score(requests)
    texts = one.generate([one.formatter.prompt(r.question) for r in task.forget[:10]], max_new_tokens=6)
    scores_book: list[dict[int, Any]] = []
    gens_book: list[dict[int, Any]] = []
    got = None
    for rank in (0, 1):
        shard = _Recorded(rank, 2, scores_book)
        scorer = ModelScorer(tiny.model, tiny.tokenizer, batch_size=4, generate_batch_size=4, bf16=False, shard=shard)
        got = scorer.score(requests)
        object.__setattr__(shard, "book", gens_book)
        gen = scorer.generate([one.formatter.prompt(r.question) for r in task.forget[:10]], max_new_tokens=6)
    # each request was scored by exactly one shard, and both shards did some of the work
    assert sorted(k for part in scores_book for k in part) == list(range(len(requests)))
    assert len(scores_book) == len(gens_book) == 2 and all(scores_book) and all(gens_book)
    assert sorted(k for part in gens_book for k in part) == list(range(10))
    assert got is not None
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a.logprobs, b.logprobs)
        np.testing.assert_array_equal(a.argmax_ids, b.argmax_ids)
    assert gen == texts


def test_a_shard_runs_batches_round_robin() -> None:
    assert [Shard(1, 3).mine(i) for i in range(6)] == [False, True, False, False, True, False]
    assert Shard(0, 1).gather({0: "a"}) == {0: "a"}
