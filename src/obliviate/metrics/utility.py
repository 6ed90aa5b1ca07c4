"""Utility metrics: what the forgetting cost.

- ``model_utility``: TOFU's harmonic mean of nine numbers, {Prob, ROUGE-L, truth ratio} x
  {retain, real_authors, world_facts}; it reads those nine stored results.
- ``fluency``: the ROME/RWKU weighted n-gram entropy of the model's greedy answers (it shares
  the generations of ``rouge`` on the same split, so it costs no extra forward pass).
- ``mcq_accuracy``: zero-shot multiple-choice accuracy in the lm-eval MMLU/WMDP style.
"""

from __future__ import annotations

from typing import Any

from obliviate.data.records import MCQ
from obliviate.data.task import UnlearningTask
from obliviate.metrics import functional as F
from obliviate.metrics.base import EvalContext, GenRequest, Metric, MetricResult, mean
from obliviate.metrics.memorization import Prob, Rouge, TruthRatio
from obliviate.scoring import ScoreRequest

UTILITY_SPLITS = ("retain", "real_authors", "world_facts")
"""The splits of TOFU's model utility (the task's ``utility_retain`` split replaces ``retain``)."""

CHOICE_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def utility_splits(task: UnlearningTask) -> list[str]:
    """Model utility's splits: the task's ``utility_retain`` split (TOFU: ``retain_perturbed``) or
    ``retain``, then real authors and world facts."""
    retain = next(iter(task.role("utility_retain")), "retain")
    return [retain, *UTILITY_SPLITS[1:]]


class ModelUtility(Metric):
    """TOFU model utility: harmonic mean of Prob, ROUGE-L and truth ratio on three kept splits."""

    name = "model_utility"
    takes_split = False

    def components(self, task: UnlearningTask) -> list[str]:
        """The nine metric keys it combines."""
        return [f"{s}/{m.name}" for s in utility_splits(task) for m in (Prob, Rouge, TruthRatio)]

    def depends(self, task: UnlearningTask) -> list[str]:
        return self.components(task)

    def splits(self, task: UnlearningTask) -> list[str]:
        return utility_splits(task)

    def compute(self, ctx: EvalContext) -> MetricResult:
        keys = self.components(ctx.task)
        values = [float(ctx.results[k]["aggregate"]) for k in keys]
        return MetricResult(values, F.model_utility(values), keys, {"mean": "harmonic"})


class Fluency(Metric):
    """Fluency: weighted 2/3-gram entropy of the greedy answers (ROME/RWKU); low = repetitive."""

    name = "fluency"

    def prompts(self, ctx: EvalContext) -> list[GenRequest]:
        return Rouge(self.split).prompts(ctx)

    def compute(self, ctx: EvalContext) -> MetricResult:
        items = ctx.items(self.split)  # type: ignore[arg-type]
        values = [F.weighted_ngram_entropy(g) for g in ctx.generate(self.prompts(ctx))]
        extra = {"orders": list(F.FLUENCY_NS), "weights": list(F.FLUENCY_WEIGHTS)}
        return MetricResult(values, mean(values), [r.id for r in items], extra)


def mcq_prompt(item: MCQ) -> str:
    """The zero-shot prompt: the question, lettered choices, then ``Answer:`` (raw,
    no chat template)."""
    lines = [item.question.strip()]
    lines += [f"{CHOICE_LETTERS[i]}. {c}" for i, c in enumerate(item.choices)]
    return "\n".join(lines) + "\nAnswer:"


class MCQAccuracy(Metric):
    """Multiple-choice accuracy: the choice letter with the highest
    log-probability is the answer."""

    name = "mcq_accuracy"
    kinds = ("mcq",)

    def missing(self, task: UnlearningTask, reference: dict[str, Any] | None) -> str | None:
        reason = super().missing(task, reference)
        if reason:
            return reason
        too_many = sum(len(q.choices) > len(CHOICE_LETTERS) for q in task.split(self.split))  # type: ignore[union-attr]
        return (
            f"{too_many} questions have more than {len(CHOICE_LETTERS)} choices"
            if too_many
            else None
        )

    @property
    def direction(self) -> str:
        # Accuracy on a hazardous-knowledge forget set (WMDP) should fall; elsewhere it should stay.
        return "lower" if self.split and "forget" in self.split else "higher"

    def _requests(self, item: MCQ) -> list[ScoreRequest]:
        prompt = mcq_prompt(item)
        return [
            ScoreRequest(prompt, f" {CHOICE_LETTERS[i]}", False) for i in range(len(item.choices))
        ]

    def requests(self, ctx: EvalContext) -> list[ScoreRequest]:
        return [r for q in ctx.items(self.split) for r in self._requests(q)]  # type: ignore[arg-type]

    def compute(self, ctx: EvalContext) -> MetricResult:
        items: list[MCQ] = ctx.items(self.split)  # type: ignore[assignment,arg-type]
        rows = [[s.total_logprob for s in ctx.score(self._requests(q))] for q in items]
        values = [float(F.mcq_accuracy([row], [q.answer])) for row, q in zip(rows, items)]
        return MetricResult(
            values, F.mcq_accuracy(rows, [q.answer for q in items]), [q.id for q in items]
        )
