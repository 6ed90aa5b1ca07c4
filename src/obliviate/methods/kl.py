"""KL-regularised gradient ascent (TOFU "KL", MUSE "ga_klr").

Maini et al. 2024, "TOFU: A Task of Fictitious Unlearning for LLMs" (arXiv:2401.06121), the
``KL`` baseline of ``locuslab/tofu`` (``dataloader.py``):

    L = γ·(−ℓ_θ(D_f)) + α·KL(p_ref ‖ p_θ) on retain inputs,   γ = α = 1

where p_ref is the frozen model before unlearning. It is gradient difference with a KL retain term
(``--method grad_diff --method.retain_loss kl`` gives the same loss); it has its own name because
the literature reports it as a separate baseline.

The KL is TOFU's ``F.kl_div(..., reduction='batchmean', log_target=True)`` over all B·T
positions, prompt and padding included (``kl_positions: all``). MUSE's ``ga_klr`` applies
``kl_div`` to raw logits rather than log-probabilities, which is a bug (reference §6); we do not
reproduce it. The reference model runs a live forward on every retain batch (its inputs are the
full-vocabulary distributions, too large to cache).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from obliviate.methods.base import LossOutput, MethodContext, UnlearnMethod
from obliviate.methods.common import KLPositions, RetainTerm, ascent_with_retain, check_weight
from obliviate.types import Model


@dataclass
class KLConfig:
    """Options of KL-regularised gradient ascent."""

    gamma: float = 1.0  # weight of the forget (ascent) term
    alpha: float = 1.0  # weight of the retain KL(p_ref || p_theta)
    kl_positions: KLPositions = "all"  # KL over all positions (TOFU batchmean) or answer tokens only

    def validate(self) -> None:
        """Reject negative weights."""
        check_weight("gamma", self.gamma, 1.0)
        check_weight("alpha", self.alpha, 1.0)


class KL(UnlearnMethod):
    """Gradient difference whose retain term is always the KL (a baseline of its own in TOFU)."""

    name: ClassVar[str] = "kl"
    config_cls: ClassVar[type] = KLConfig
    uses_retain: ClassVar[bool] = True
    train_defaults: ClassVar[dict[str, float]] = {"lr": 6e-5, "epochs": 5.0, "batch_size": 8}

    def __init__(self, config: KLConfig) -> None:
        super().__init__(config)
        self.retain = RetainTerm("kl", config.kl_positions)

    def prepare(self, ctx: MethodContext) -> None:
        """Keep the frozen reference model for the live retain KL."""
        self.retain.prepare(ctx)

    def loss(self, model: Model, batch: dict[str, Any]) -> LossOutput:
        """γ·(−forget NLL) + α·KL(p_ref ‖ p_θ) on the retain batch."""
        return ascent_with_retain(model, batch, self.retain, self.config.gamma, self.config.alpha)
