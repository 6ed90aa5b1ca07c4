"""Privacy metrics: membership inference (six attacks), TOFU forget quality and MUSE PrivLeak.

Every attack scores each member (an item of a forget split) and each non-member (the matching
holdout split: ``forget`` -> ``holdout``, ``forget_bio`` -> ``holdout_bio``, otherwise
``holdout``) with a score where higher means "more likely a member", and reports the AUROC
(:func:`obliviate.metrics.functional.mia_auc`): 1.0 = the forget set still looks memorised, 0.5 =
indistinguishable from never-seen data (the goal), below 0.5 = over-unlearning. The per-item
values are the attack scores, members first; ``mia_loss`` values are the mean per-token
log-probabilities that a later run's reference attack reads, so the reference model is never
reloaded.
"""

from __future__ import annotations

import abc
import math
from typing import Any

from obliviate.data.formatting import IGNORE_INDEX, encode_pair
from obliviate.data.records import Record
from obliviate.data.task import UnlearningTask
from obliviate.errors import ConfigError, DataError
from obliviate.metrics import functional as F
from obliviate.metrics.base import (
    EvalContext,
    Metric,
    MetricResult,
    MetricSkipped,
    answer_scores,
    drops_end,
    end_token_note,
    record_request,
    record_text,
    reference_entry,
)
from obliviate.models.io import offloaded
from obliviate.runtime import share_threads
from obliviate.scoring import ScoreRequest, TokenScores
from obliviate.types import Model


def nonmember_split(task: UnlearningTask, split: str) -> str:
    """The non-member split paired with member split ``split`` (see the module docstring)."""
    candidate = split.replace("forget", "holdout")
    return candidate if candidate != split and task.all_splits().get(candidate) else "holdout"


class MIAttack(Metric):
    """Base of the membership-inference attacks: AUROC of members vs non-members."""

    kinds = ("qa", "text")
    default_direction = "closer_to_half"

    def splits(self, task: UnlearningTask) -> list[str]:
        return [self.split, nonmember_split(task, self.split)]  # type: ignore[list-item]

    def _sides(self, ctx: EvalContext) -> tuple[list[Record], list[Record]]:
        members, nonmembers = self.splits(ctx.task)
        return ctx.items(members), ctx.items(nonmembers)

    def requests(self, ctx: EvalContext) -> list[ScoreRequest]:
        members, nonmembers = self._sides(ctx)
        return [record_request(ctx.scorer, r) for r in members + nonmembers]

    @abc.abstractmethod
    def scores(self, ctx: EvalContext, records: list[Record]) -> list[float]:
        """The attack's score of each record: higher = more likely a member."""

    def compute(self, ctx: EvalContext) -> MetricResult:
        members, nonmembers = self._sides(ctx)
        mem, non = self.scores(ctx, members), self.scores(ctx, nonmembers)
        extra = {
            "members": self.split,
            "nonmembers": self.splits(ctx.task)[1],
            "n_members": len(mem),
            "convention": "score higher = member; AUROC with forget items labelled 1",
        }
        ids = [r.id for r in members + nonmembers]
        return MetricResult(mem + non, F.mia_auc(mem, non), ids, extra)


class PerItemAttack(MIAttack):
    """An attack that scores each item from its own token scores alone."""

    @abc.abstractmethod
    def item_score(self, ctx: EvalContext, record: Record, scores: TokenScores) -> float:
        """The attack's score of one item: higher = more likely a member."""

    def scores(self, ctx: EvalContext, records: list[Record]) -> list[float]:
        token_scores = ctx.score([record_request(ctx.scorer, r) for r in records])
        return [self.item_score(ctx, r, s) for r, s in zip(records, token_scores)]


class LossAttack(PerItemAttack):
    """LOSS attack: mean per-token log-probability (its per-item values feed the
    reference attack)."""

    name = "mia_loss"

    def item_score(self, ctx: EvalContext, record: Record, scores: TokenScores) -> float:
        return F.mia_loss(scores.logprobs)


class ZlibAttack(PerItemAttack):
    """Zlib attack: mean log-probability divided by the zlib-compressed length of the text."""

    name = "mia_zlib"

    def item_score(self, ctx: EvalContext, record: Record, scores: TokenScores) -> float:
        return F.mia_zlib(scores.logprobs, record_text(record))


class MinKAttack(PerItemAttack):
    """Min-K% Prob attack: mean of the lowest k of the token log-probabilities (k = eval.k).

    On QA the end token is left out (``eval.end_token``), as in open-unlearning.
    """

    name = "mia_min_k"

    def item_score(self, ctx: EvalContext, record: Record, scores: TokenScores) -> float:
        scores = answer_scores(ctx, record_request(ctx.scorer, record), scores)
        return F.mia_min_k(scores.logprobs, ctx.options.k)

    def compute(self, ctx: EvalContext) -> MetricResult:
        result = super().compute(ctx)
        result.extra["end_token"] = end_token_note(ctx)
        return result


class MinKPlusPlusAttack(PerItemAttack):
    """Min-K%++ attack: Min-K% of log-probabilities standardised by the vocabulary moments."""

    name = "mia_min_k_pp"
    vocab_stats = True

    def item_score(self, ctx: EvalContext, record: Record, scores: TokenScores) -> float:
        if scores.mean is None or scores.var is None:
            scores = ctx.scorer.score([record_request(ctx.scorer, record)], vocab_stats=True)[0]
        if scores.mean is None or scores.var is None:
            raise MetricSkipped("the scorer gives no vocabulary statistics (TokenScores.mean/var)")
        scores = answer_scores(ctx, record_request(ctx.scorer, record), scores)
        return F.mia_min_k_plus_plus(scores.logprobs, scores.mean, scores.var, ctx.options.k)  # type: ignore[arg-type]

    def compute(self, ctx: EvalContext) -> MetricResult:
        result = super().compute(ctx)
        result.extra["end_token"] = end_token_note(ctx)
        return result


class ReferenceAttack(MIAttack):
    """Reference attack: mean log-probability minus the reference model's (from its saved run)."""

    name = "mia_reference"
    uses_reference = True
    self_value = 0.5  # against itself every score is 0: no separation

    def _ref_key(self) -> str:
        return f"{self.split}/{LossAttack.name}"

    def missing(self, task: UnlearningTask, reference: dict[str, Any] | None) -> str | None:
        if reference is None:
            return "needs the reference model's results (--reference)"
        return super().missing(task, reference)

    def check_reference(self, task: UnlearningTask, reference: dict[str, Any]) -> None:
        entry = reference_entry(reference, self._ref_key())
        if entry is None or not entry.get("values"):
            raise ConfigError(
                f"the reference run has no per-item {self._ref_key()!r} values, which {self.key} "
                "needs; evaluate the reference model with that metric first (obliviate eval "
                f"--metrics {self._ref_key()})"
            )

    def scores(self, ctx: EvalContext, records: list[Record]) -> list[float]:
        entry = reference_entry(ctx.reference, self._ref_key())
        if entry is None:
            raise MetricSkipped("needs the reference model's results (--reference)")
        ref = {i: v for i, v in zip(entry["item_ids"], entry["values"]) if v is not None}
        lacking = [r.id for r in records if r.id not in ref]
        if lacking:
            raise DataError(
                f"the reference run has no {self._ref_key()} value for items {lacking[:3]} "
                f"({len(lacking)} in all); evaluate the reference on the same benchmark "
                "with the same eval.max_items"
            )
        token_scores = ctx.score([record_request(ctx.scorer, r) for r in records])
        return [F.mia_reference(s.logprobs, [ref[r.id]]) for r, s in zip(records, token_scores)]


class GradNormAttack(MIAttack):
    """GradNorm attack: minus the mean over parameter tensors of the gradient 2-norm of the NLL.

    The one metric that needs the model itself (:attr:`EvalContext.model`, batch size 1). It scores
    only the first ``eval.gradnorm_items`` (32) members and non-members to stay cheap (run.json's
    ``extra.n_members`` says how many); on QA the end token is left out (``eval.end_token``), as
    in open-unlearning. Under several launched processes each computes every world-th item's norm
    (batch size 1: the single process's computation) and all gather them.
    """

    name = "mia_gradnorm"

    def requests(self, ctx: EvalContext) -> list[ScoreRequest]:
        return []

    def _sides(self, ctx: EvalContext) -> tuple[list[Record], list[Record]]:
        n = ctx.options.gradnorm_items
        if n == 0:
            raise MetricSkipped("eval.gradnorm_items is 0")
        if ctx.model is None:
            raise MetricSkipped("needs the model itself (the scorer is not a plain model)")
        if offloaded(ctx.model):
            raise MetricSkipped(
                "needs gradients of every weight, and eval.device_map "
                "offloaded some off the devices"
            )
        members, nonmembers = super()._sides(ctx)
        return members[:n], nonmembers[:n]

    def scores(self, ctx: EvalContext, records: list[Record]) -> list[float]:
        requests = [record_request(ctx.scorer, r) for r in records]
        inner = getattr(ctx.scorer, "inner", ctx.scorer)
        # the same precision as the scorer's forward passes
        bf16 = bool(getattr(inner, "bf16", False))
        drop = [drops_end(ctx, r) for r in requests]
        # launched processes: each takes every world-th item, then all gather
        shard = getattr(inner, "shard", None)
        mine = [i for i in range(len(requests)) if shard is None or i % shard.world == shard.rank]
        norms = gradient_norms(
            ctx.model,
            ctx.scorer.formatter,
            [requests[i] for i in mine],
            bf16=bf16,
            drop_end=[drop[i] for i in mine],
        )
        by_item = dict(zip(mine, norms)) if shard is None else shard.gather(dict(zip(mine, norms)))
        return [F.mia_gradnorm(by_item[i]) for i in range(len(requests))]

    def compute(self, ctx: EvalContext) -> MetricResult:
        result = super().compute(ctx)
        result.extra.update(
            end_token=end_token_note(ctx),
            items_scored= (
                f"the first {ctx.options.gradnorm_items} of each side (eval.gradnorm_items)"
            ),
        )
        return result


def gradient_norms(
    model: Model,
    formatter: Any,
    requests: list[ScoreRequest],
    max_length: int = 512,
    *,
    bf16: bool = False,
    drop_end: list[bool] | None = None,
) -> list[float]:
    """Per request (batch size 1): mean over parameter tensors of ||grad of the mean answer NLL||_2.

    ``drop_end[i]`` leaves request ``i``'s last label (its end token) out of the NLL.

    Every parameter takes part (requires_grad is switched on for the pass and restored after), and
    the gradients are cleared afterwards, so the model is left as it was. ``bf16`` runs the pass
    under bf16 autocast (~25 % faster on CPUs with AVX-512 bf16; norms agree to ~1 %).
    """
    import contextlib

    import torch

    from obliviate.models.precision import bf16_autocast, bf16_linear_weights

    params = list(model.parameters())
    saved = [p.requires_grad for p in params]
    was_training = model.training
    device = params[0].device
    norms: list[float] = []
    model.eval()
    # Under bf16 the linear layers hold trainable bf16 copies of their weights (autocast's own
    # operands, cast once, not on every pass); a parameter's gradient is then its copy's bf16
    # gradient in fp32 (exactly what autocast's cast back gives), plus, for a weight tied to an
    # embedding, the embedding's own part: the same sum autograd accumulates.
    swapped = bf16_linear_weights(model, trainable=True) if bf16 else contextlib.nullcontext({})
    try:
        for p in params:
            p.requires_grad_(True)
        with swapped as copies:
            for i, r in enumerate(requests):
                share_threads()
                enc = encode_pair(formatter, r.prompt, r.answer, max_length, add_end=r.add_end)
                labels_list = list(enc.labels)
                if (
                    drop_end is not None
                    and drop_end[i]
                    and sum(x != IGNORE_INDEX for x in labels_list) > 1
                ):
                    labels_list[-1] = IGNORE_INDEX
                ids = torch.tensor([enc.input_ids], device=device)
                labels = torch.tensor([labels_list], device=device)
                # the originals are out of the model while swapped
                for t in (*params, *copies.values()):
                    t.grad = None
                with torch.enable_grad():
                    with bf16_autocast(device, bf16):
                        logits = model(input_ids=ids).logits[:, :-1].float()
                    loss = torch.nn.functional.cross_entropy(
                        logits.reshape(-1, logits.shape[-1]),
                        labels[:, 1:].reshape(-1),
                        ignore_index=IGNORE_INDEX,
                    )
                    loss.backward()
                grads = []
                for p in params:
                    g, c = p.grad, copies.get(id(p))
                    if c is not None and c.grad is not None:
                        g = c.grad.float() if g is None else g + c.grad.float()
                    if g is not None:
                        grads.append(g.detach().float().norm(2))
                value = float(torch.stack(grads).mean()) if grads else math.nan
                if not math.isfinite(value):
                    raise DataError(
                        "the GradNorm attack got a non-finite gradient norm "
                        f"for prompt {r.prompt[:60]!r}"
                    )
                norms.append(value)
    finally:
        for p, flag in zip(params, saved):
            p.grad = None
            p.requires_grad_(flag)
        model.train(was_training)
    return norms


class ForgetQuality(Metric):
    """TOFU forget quality: KS-test p-value of forget truth ratios vs the reference model's."""

    name = "forget_quality"
    takes_split = False
    uses_reference = True
    self_value = 1.0  # a KS test of a sample against itself
    source = "forget/truth_ratio"

    def depends(self, task: UnlearningTask) -> list[str]:
        return [self.source]

    def missing(self, task: UnlearningTask, reference: dict[str, Any] | None) -> str | None:
        if reference is None:
            return "needs the retain-only model's results (--reference)"
        return None

    def check_reference(self, task: UnlearningTask, reference: dict[str, Any]) -> None:
        entry = reference_entry(reference, self.source)
        if entry is None or not entry.get("values"):
            raise ConfigError(
                f"the reference run has no per-item {self.source!r} values, which "
                "forget_quality needs; evaluate the retain-only model with it first (obliviate "
                f"eval --metrics {self.source})"
            )

    def compute(self, ctx: EvalContext) -> MetricResult:
        ours = [v for v in ctx.results[self.source]["values"] if v is not None]
        entry = reference_entry(ctx.reference, self.source)
        if entry is None:
            raise MetricSkipped("needs the retain-only model's results (--reference)")
        theirs = [v for v in entry["values"] if v is not None]
        extra = {"n": len(ours), "n_reference": len(theirs), "test": "scipy.stats.ks_2samp"}
        return MetricResult([], F.forget_quality(ours, theirs), [], extra)


class PrivLeak(Metric):
    """MUSE PrivLeak: relative gap between the Min-K% AUC and the reference model's AUC, x100.

    Uses the task's ``privleak`` split (MUSE: ``privleak_forget``) when it has one, else
    ``forget``. The reference AUC comes from the reference run, else from the
    benchmark's ``privleak_auc_retrain`` (MUSE's constant, in MUSE's convention), else
    0.5 as in open-unlearning.
    """

    name = "privleak"
    default_direction = "closer_to_zero"
    takes_split = False
    uses_reference = True
    self_value = 0.0  # the same AUC as the reference

    def _source(self, task: UnlearningTask) -> str:
        split = next(iter(task.role("privleak")), "forget")
        return f"{split}/{MinKAttack.name}"

    def depends(self, task: UnlearningTask) -> list[str]:
        return [self._source(task)]

    def check_reference(self, task: UnlearningTask, reference: dict[str, Any]) -> None:
        entry = reference_entry(reference, self._source(task))
        if entry is None or entry.get("aggregate") is None:
            raise ConfigError(
                f"the reference run has no {self._source(task)!r} AUC, which privleak "
                "needs; evaluate the retain-only model with it first (obliviate eval "
                f"--metrics {self._source(task)})"
            )

    def compute(self, ctx: EvalContext) -> MetricResult:
        source = self._source(ctx.task)
        auc = float(ctx.results[source]["aggregate"])
        entry = reference_entry(ctx.reference, source)
        muse_constant = ctx.task.metadata.get("privleak_auc_retrain")
        if entry is not None:
            auc_ref, origin = float(entry["aggregate"]), "reference run"
        elif muse_constant is not None:
            auc_ref, origin = 1.0 - float(muse_constant), "benchmark constant (MUSE AUC_RETRAIN)"
        else:
            auc_ref, origin = 0.5, "default 0.5 (no reference)"
        extra = {
            "auc": auc,
            "auc_reference": auc_ref,
            "auc_reference_from": origin,
            "source": source,
        }
        return MetricResult([], F.privleak(auc, auc_ref), [], extra)
