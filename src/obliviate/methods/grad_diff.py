"""Gradient difference: gradient ascent on the forget set, descent on a retain term.

Maini et al. 2024, "TOFU: A Task of Fictitious Unlearning for LLMs" (arXiv:2401.06121), the
``grad_diff`` baseline of ``locuslab/tofu`` and ``GradDiff`` of ``locuslab/open-unlearning``:

    L = γ·(−ℓ_θ(D_f)) + α·R,   R = ℓ_θ(D_r) (retain NLL)  or  KL(p_ref ‖ p_θ) on retain inputs

with γ = α = 1 by default (``configs/trainer/GradDiff.yaml``). ``retain_loss: kl`` is the TOFU
"KL" method (also registered on its own as ``kl``). Each forget item is paired with a retain item
drawn afresh every epoch, seeded by (seed, epoch, item) (see
:func:`obliviate.unlearning.build_items`; TOFU draws one on every access).

The KL follows TOFU's ``batchmean`` over all B·T positions, prompt and padding included
(``kl_positions: all``); ``kl_positions: answer`` averages over retain answer tokens only, which
does not depend on padding. Unlike open-unlearning's KL path, the retain batch runs through the
trained model once: its logits give both the KL and the logged retain NLL.

The retain term is :class:`~obliviate.methods.common.RetainTerm`, shared with ``kl``, ``npo``,
``simnpo`` and ``idk_dpo``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from obliviate.methods.base import LossOutput, MethodContext, UnlearnMethod
from obliviate.methods.common import (
    KLPositions,
    RetainLoss,
    RetainTerm,
    ascent_with_retain,
    check_weight,
)
from obliviate.types import Model


@dataclass
class GradDiffConfig:
    """Options of gradient difference."""

    retain_loss: RetainLoss = "nll"  # retain term: nll (GradDiff) or kl (TOFU "KL"); none is plain GA
    gamma: float = 1.0  # weight of the forget (ascent) term
    alpha: float = 1.0  # weight of the retain term
    kl_positions: KLPositions = "all"  # KL over all positions (TOFU batchmean) or answer tokens only

    def validate(self) -> None:
        """Reject negative weights."""
        check_weight("gamma", self.gamma, 1.0)
        check_weight("alpha", self.alpha, 1.0)


class GradDiff(UnlearnMethod):
    """Ascends the forget NLL, descends the retain term (:class:`.common.RetainTerm`)."""

    name: ClassVar[str] = "grad_diff"
    config_cls: ClassVar[type] = GradDiffConfig
    uses_retain: ClassVar[bool] = True
    train_defaults: ClassVar[dict[str, float]] = {"lr": 6e-5, "epochs": 5.0, "batch_size": 8}

    def __init__(self, config: GradDiffConfig) -> None:
        super().__init__(config)
        self.retain = RetainTerm(config.retain_loss, config.kl_positions)

    def prepare(self, ctx: MethodContext) -> None:
        """Keep the frozen reference model when the retain term is a KL."""
        self.retain.prepare(ctx)

    def loss(self, model: Model, batch: dict[str, Any]) -> LossOutput:
        """γ·(−forget NLL) + α·retain term."""
        return ascent_with_retain(model, batch, self.retain, self.config.gamma, self.config.alpha)
