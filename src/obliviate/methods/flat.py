"""FLAT: forgetting by loss adjustment with an f-divergence, on forget data only.

Wang et al. 2024, "LLM Unlearning via Loss Adjustment with Only Forget Data"
(arXiv:2410.11143, ICLR 2025), official code ``UCSC-REAL/FLAT``.

For each forget question x with its forget answer y_f and a template answer y_e (a refusal):
P_f = P̄(y_f|x) and P_e = P̄(y_e|x), the mean token probabilities of
:func:`obliviate.methods.losses.mean_token_prob`, and L = −mean g(P_e) + mean φ(P_f)
(:func:`obliviate.methods.losses.flat_loss`) for one of eight f-divergences (g, φ). Minimising it
raises the template's probability and lowers the forget answer's, without a retain set or a
reference model.

Deliberate deviation (switch it off with ``official_pooling: true``): by default P̄ averages over
answer tokens only and g, φ apply per sequence, so the loss does not depend on padding. FLAT's
code averages token probabilities over every position of the padded batch (ignored positions
count 0) and pools the whole batch into one scalar before applying g and φ; ``official_pooling``
reproduces that, with the padded width being that of our batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from obliviate.methods.base import LossOutput, UnlearnMethod, forward_logits
from obliviate.methods.losses import flat_loss, mean_nll, mean_token_prob, resolve_divergence
from obliviate.types import Model


@dataclass
class FLATConfig:
    """Options of FLAT."""

    divergence: str = "total_variation"  # f-divergence: kl, reverse_kl, pearson, jeffrey, squared_hellinger, neyman, jensen_shannon, total_variation
    official_pooling: bool = False  # FLAT's batch-pooled, all-position P̄ (depends on padding) instead of per-sequence answer-token P̄

    def validate(self) -> None:
        """Reject an unknown divergence name (FLAT's spellings such as
        Total-Variation are accepted)."""
        resolve_divergence(self.divergence)


class FLAT(UnlearnMethod):
    """FLAT's loss on each batch's template and forget answers; no retain set, no reference."""

    name: ClassVar[str] = "flat"
    config_cls: ClassVar[type] = FLATConfig
    uses_template: ClassVar[bool] = True
    train_defaults: ClassVar[dict[str, float]] = {"lr": 3e-5, "epochs": 5.0, "batch_size": 8}

    def loss(self, model: Model, batch: dict[str, Any]) -> LossOutput:
        """The f-divergence loss on P̄ of the template answers and of the forget answers."""
        over = "all" if self.config.official_pooling else "answer"
        f_logits, f_labels = forward_logits(model, batch["forget"])
        t_logits, t_labels = forward_logits(model, batch["template"])
        p_forget = mean_token_prob(f_logits, f_labels, over=over)
        p_template = mean_token_prob(t_logits, t_labels, over=over)
        loss = flat_loss(
            p_template, p_forget, self.config.divergence, pool_batch=self.config.official_pooling
        )
        logs = {
            "forget_nll": float(mean_nll(f_logits.detach(), f_labels)),
            "template_nll": float(mean_nll(t_logits.detach(), t_labels)),
            "p_forget": float(p_forget.detach().mean()),
            "p_template": float(p_template.detach().mean()),
        }
        return LossOutput(loss, logs)
