"""Memorization metrics: how much of an answer or a text the model still reproduces.

TOFU's Prob, ROUGE-L and truth ratio; open-unlearning's extraction strength and exact
memorization; MUSE's VerbMem and KnowMem. On forget splits lower means more forgotten (the
retain-only model's value is the target); on every other split higher means more kept. The
formulas are in :mod:`obliviate.metrics.functional`; this module only feeds them.
"""

from __future__ import annotations

import abc
from typing import Any

from obliviate.data.records import QA, Text
from obliviate.data.task import UnlearningTask
from obliviate.metrics import functional as F
from obliviate.metrics.base import (
    EvalContext,
    GenRequest,
    Metric,
    MetricResult,
    answer_scores,
    end_token_note,
    is_forget_split,
    mean,
)
from obliviate.scoring import ScoreRequest


class _SplitMetric(Metric):
    """A metric on one split whose best direction is down on forget splits and up elsewhere."""

    @property
    def direction(self) -> str:
        return "lower" if is_forget_split(self.split) else "higher"


def _qa_items(ctx: EvalContext, split: str) -> list[QA]:
    return ctx.items(split)  # type: ignore[return-value]


class Prob(_SplitMetric):
    """TOFU Prob: length-normalised answer probability (over the options on
    real_authors/world_facts)."""

    name = "prob"

    def _options(self, task: UnlearningTask, item: QA) -> bool:
        return task.has_role(self.split, "options") and bool(item.perturbed_answers)

    def requests(self, ctx: EvalContext) -> list[ScoreRequest]:
        s = ctx.scorer
        out: list[ScoreRequest] = []
        for q in _qa_items(ctx, self.split):
            out.append(s.qa_request(q.question, q.answer))
            if self._options(ctx.task, q):
                out.extend(s.qa_request(q.question, p) for p in q.perturbed_answers)
        return out

    def compute(self, ctx: EvalContext) -> MetricResult:
        items = _qa_items(ctx, self.split)
        values = []
        for q in items:
            true = ctx.score([ctx.scorer.qa_request(q.question, q.answer)])[0].mean_logprob
            if self._options(ctx.task, q):
                wrong = ctx.score(
                    [ctx.scorer.qa_request(q.question, p) for p in q.perturbed_answers]
                )
                values.append(F.option_normalized_prob(true, [w.mean_logprob for w in wrong]))
            else:
                values.append(F.length_normalized_prob([true]))
        normalised = ctx.task.has_role(self.split, "options")
        return MetricResult(
            values, mean(values), [q.id for q in items], {"option_normalized": normalised}
        )


class Rouge(_SplitMetric):
    """TOFU ROUGE-L recall (Porter stemmer) of the greedy answer against the true answer."""

    name = "rouge"

    def prompts(self, ctx: EvalContext) -> list[GenRequest]:
        fmt = ctx.scorer.formatter
        return [
            GenRequest(fmt.prompt(q.question), ctx.options.max_new_tokens)
            for q in _qa_items(ctx, self.split)
        ]

    def compute(self, ctx: EvalContext) -> MetricResult:
        items = _qa_items(ctx, self.split)
        gens = ctx.generate(self.prompts(ctx))
        values = [F.rouge_l(g, q.answer, mode="recall", stemmer=True) for g, q in zip(gens, items)]
        ids = [q.id for q in items]
        extra = {"max_new_tokens": ctx.options.max_new_tokens}
        return MetricResult(values, mean(values), ids, extra, dict(zip(ids, gens)))


class TruthRatio(Metric):
    """TOFU truth ratio R: geometric-mean probability of wrong answers over that of the true one."""

    name = "truth_ratio"
    default_direction = "higher"

    @property
    def description(self) -> str:  # type: ignore[override]
        if is_forget_split(self.split):
            return (
                "truth ratio, mean of min(R, 1/R): 1 = true and false answers equally likely (TOFU)"
            )
        return (
            "truth ratio, mean of max(0, 1 - R): the true answer is "
            "preferred over false ones (TOFU)"
        )

    def missing(self, task: UnlearningTask, reference: dict[str, Any] | None) -> str | None:
        reason = super().missing(task, reference)
        if reason:
            return reason
        lacking = sum(not q.perturbed_answers for q in task.split(self.split))  # type: ignore[union-attr]
        return f"{lacking} items of {self.split!r} have no perturbed answers" if lacking else None

    def _true_answer(self, task: UnlearningTask, q: QA) -> str:
        if task.has_role(self.split, "options") or not q.paraphrased_answer:
            return q.answer
        return q.paraphrased_answer

    def requests(self, ctx: EvalContext) -> list[ScoreRequest]:
        s = ctx.scorer
        out: list[ScoreRequest] = []
        for q in _qa_items(ctx, self.split):
            out.append(s.qa_request(q.question, self._true_answer(ctx.task, q)))
            out.extend(s.qa_request(q.question, p) for p in q.perturbed_answers)
        return out

    def compute(self, ctx: EvalContext) -> MetricResult:
        items = _qa_items(ctx, self.split)
        values = []
        for q in items:
            true = ctx.score([ctx.scorer.qa_request(q.question, self._true_answer(ctx.task, q))])[
                0
            ].mean_logprob
            wrong = ctx.score([ctx.scorer.qa_request(q.question, p) for p in q.perturbed_answers])
            values.append(F.truth_ratio(true, [w.mean_logprob for w in wrong]))
        forget = is_forget_split(self.split)
        aggregate = F.truth_ratio_forget_agg(values) if forget else F.truth_ratio_retain_agg(values)
        extra = {
            "values_are": "raw truth ratios R",
            "aggregate_form": "mean min(R, 1/R)" if forget else "mean max(0, 1 - R)",
            "true_answer": "original"
            if ctx.task.has_role(self.split, "options")
            else "paraphrased",
        }
        return MetricResult(values, aggregate, [q.id for q in items], extra)


class _ArgmaxMetric(_SplitMetric):
    """Base of metrics on the teacher-forced argmax of the true answer.

    As in open-unlearning, the end token's prediction is left out (``eval.end_token drop``): both
    a target and a retain-only model predict it almost always, so counting it inflates
    memorization most on the model that should score low.
    """

    def requests(self, ctx: EvalContext) -> list[ScoreRequest]:
        return [ctx.scorer.qa_request(q.question, q.answer) for q in _qa_items(ctx, self.split)]

    @abc.abstractmethod
    def _value(self, pred: Any, labels: Any) -> float:
        """The metric's value for one item's argmax predictions and true tokens."""

    def compute(self, ctx: EvalContext) -> MetricResult:
        items = _qa_items(ctx, self.split)
        requests = self.requests(ctx)
        scores = [answer_scores(ctx, r, s) for r, s in zip(requests, ctx.score(requests))]
        values = [self._value(s.argmax_ids, s.token_ids) for s in scores]
        return MetricResult(
            values, mean(values), [q.id for q in items], {"end_token": end_token_note(ctx)}
        )


class ExtractionStrength(_ArgmaxMetric):
    """Extraction strength ES = 1 - k*/|y| on the teacher-forced argmax (open-unlearning)."""

    name = "extraction_strength"

    def _value(self, pred: Any, labels: Any) -> float:
        return F.extraction_strength(pred, labels)


class ExactMemorization(_ArgmaxMetric):
    """Exact memorization EM: share of answer tokens the model predicts exactly (teacher forced)."""

    name = "exact_memorization"

    def _value(self, pred: Any, labels: Any) -> float:
        return F.exact_memorization(pred, labels)


class VerbMem(_SplitMetric):
    """MUSE VerbMem: ROUGE-L F1 (no stemmer) of the greedy continuation of a text's prompt.

    Reported on a 0-1 scale (MUSE prints it x100). The ground-truth continuation is cut to its
    first ``verbmem_max_new_tokens`` tokens as MUSE cuts it: tokenized with the tokenizer's special
    tokens (so under a BOS-adding tokenizer the BOS takes one of the places), then decoded
    without them.
    """

    name = "verbmem"
    kinds = ("text",)

    def missing(self, task: UnlearningTask, reference: dict[str, Any] | None) -> str | None:
        reason = super().missing(task, reference)
        if reason:
            return reason
        lacking = sum(not (t.prompt and t.continuation) for t in task.split(self.split))  # type: ignore[union-attr]
        return f"{lacking} texts of {self.split!r} have no prompt/continuation" if lacking else None

    def prompts(self, ctx: EvalContext) -> list[GenRequest]:
        n = ctx.options.verbmem_max_new_tokens
        return [GenRequest(t.prompt or "", n) for t in ctx.items(self.split)]  # type: ignore[union-attr]

    def compute(self, ctx: EvalContext) -> MetricResult:
        items: list[Text] = ctx.items(self.split)  # type: ignore[assignment]
        gens = ctx.generate(self.prompts(ctx))
        tok = ctx.scorer.formatter.tokenizer
        n = ctx.options.verbmem_max_new_tokens
        values = []
        for g, t in zip(gens, items):
            # as MUSE cuts it
            ids = tok(t.continuation or "", add_special_tokens=True)["input_ids"][:n]
            reference = tok.decode(ids, skip_special_tokens=True)
            values.append(F.rouge_l(g, reference, mode="f1", stemmer=False))
        ids_ = [t.id for t in items]
        extra = {"scale": "0-1 (MUSE reports x100)", "max_new_tokens": n}
        return MetricResult(values, mean(values), ids_, extra, dict(zip(ids_, gens)))


class KnowMem(_SplitMetric):
    """MUSE KnowMem: ROUGE-L F1 of a few-shot greedy answer (raw "Question:
    ...\\nAnswer: " prompts).

    The few-shot examples come from the split ``<split>_icl`` when the task has one (MUSE ships
    them), otherwise from the first other items of the split itself.
    """

    name = "knowmem"

    def _shots(self, ctx: EvalContext, item: QA) -> list[QA]:
        icl = ctx.task.all_splits().get(f"{self.split}_icl") or ctx.task.split(self.split)
        pool = [q for q in icl if isinstance(q, QA) and q.id != item.id]
        return pool[: ctx.options.knowmem_shots]

    def prompts(self, ctx: EvalContext) -> list[GenRequest]:
        out = []
        for q in _qa_items(ctx, self.split):
            shots = "".join(
                f"Question: {s.question}\nAnswer: {s.answer}\n\n" for s in self._shots(ctx, q)
            )
            prompt = f"{shots}Question: {q.question}\nAnswer: "
            out.append(GenRequest(prompt, ctx.options.knowmem_max_new_tokens, F.MUSE_KNOWMEM_STOPS))
        return out

    def compute(self, ctx: EvalContext) -> MetricResult:
        items = _qa_items(ctx, self.split)
        gens = [F.truncate_at_stop(g) for g in ctx.generate(self.prompts(ctx))]
        values = [F.rouge_l(g, q.answer, mode="f1", stemmer=False) for g, q in zip(gens, items)]
        ids = [q.id for q in items]
        extra = {"scale": "0-1 (MUSE reports x100)", "shots": ctx.options.knowmem_shots}
        return MetricResult(values, mean(values), ids, extra, dict(zip(ids, gens)))
