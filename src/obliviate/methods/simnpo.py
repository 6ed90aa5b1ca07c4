"""SimNPO: reference-free, length-normalised NPO with a retain term.

Fan, Liu, Lin, Jia, Zhang, Mei and Liu 2024, "Simplicity Prevails: Rethinking Negative Preference
Optimization for LLM Unlearning" (arXiv:2410.07163), official code ``OPTML-Group/Unlearn-Simple``
(``TOFU/dataloader.py``, ``simnpo_grad_diff``):

    L = c_npo·(−(2/β)·mean log σ(β·(S_θ/|y| − δ))) + c_gd·R

with S_θ/|y| the mean answer NLL of each forget sequence (:func:`~obliviate.methods.losses.
simnpo_loss`) and R the retain NLL. No reference model is needed.

Defaults follow ``locuslab/open-unlearning`` ``configs/trainer/SimNPO.yaml``: β = 4.5, δ = 0,
forget weight 0.125 (our ``c_npo``, its ``gamma``), retain weight 1 (our ``c_gd``, its ``alpha``).
The official TOFU forget05 run of Unlearn-Simple uses β = 2.5, c_npo = 0.1375 instead, and its MUSE
runs β = 0.7 (News) or 0.75 (Books) with retain weight 0.1. The official code calls δ ``gamma``;
the paper's margin γ equals β·δ. SimNPO's MUSE code inherits MUSE's raw-logit log-ratio (reference
§6); we implement the sequence form above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from obliviate.methods.base import LossOutput, MethodContext, UnlearnMethod, forward_logits
from obliviate.methods.common import (
    KLPositions,
    RetainLoss,
    RetainTerm,
    check_weight,
    forget_nll_from_sequences,
)
from obliviate.methods.losses import answer_lengths, sequence_nll, simnpo_loss
from obliviate.types import Model


@dataclass
class SimNPOConfig:
    """Options of SimNPO (defaults: open-unlearning's SimNPO.yaml)."""

    beta: float = 4.5  # inverse temperature of the log-sigmoid
    delta: float = 0.0  # margin subtracted from the length-normalised NLL (the code's "gamma")
    c_npo: float = 0.125  # weight of the SimNPO forget term
    c_gd: float = 1.0  # weight of the retain term
    retain_loss: RetainLoss = "nll"  # retain term: nll (official), kl, or none
    kl_positions: KLPositions = "all"  # retain KL over all positions (TOFU batchmean) or answer tokens

    def validate(self) -> None:
        """Reject a non-positive beta and negative weights."""
        check_weight("beta", self.beta, 4.5, positive=True)
        check_weight("c_npo", self.c_npo, 0.125)
        check_weight("c_gd", self.c_gd, 1.0)


class SimNPO(UnlearnMethod):
    """Length-normalised NPO with no reference model, plus a retain term."""

    name: ClassVar[str] = "simnpo"
    config_cls: ClassVar[type] = SimNPOConfig
    uses_retain: ClassVar[bool] = True
    train_defaults: ClassVar[dict[str, float]] = {"lr": 1.5e-4, "epochs": 8.0, "batch_size": 8}  # 8e-5 before retain partners were redrawn per epoch

    def __init__(self, config: SimNPOConfig) -> None:
        super().__init__(config)
        self.retain = RetainTerm(config.retain_loss, config.kl_positions)

    def prepare(self, ctx: MethodContext) -> None:
        """Keep the reference model only for a KL retain term (SimNPO itself needs none)."""
        self.retain.prepare(ctx)

    def loss(self, model: Model, batch: dict[str, Any]) -> LossOutput:
        """c_npo·SimNPO(forget) + c_gd·retain term."""
        cfg = self.config
        logits, labels = forward_logits(model, batch["forget"], answers_only=True)
        seq_nll = sequence_nll(logits, labels)
        forget = simnpo_loss(seq_nll, answer_lengths(labels), cfg.beta, cfg.delta)
        logs = {
            "forget_nll": forget_nll_from_sequences(seq_nll, labels),
            "simnpo": float(forget.detach()),
        }
        loss, retain_logs = self.retain.add(cfg.c_npo * forget, cfg.c_gd, model, batch)
        return LossOutput(loss, {**logs, **retain_logs})
