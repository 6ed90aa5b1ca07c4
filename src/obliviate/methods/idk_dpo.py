"""IdkDPO: direct preference optimisation of a refusal over the true forget answer.

DPO is Rafailov et al. 2023, "Direct Preference Optimization" (arXiv:2305.18290); its use for
unlearning with "I don't know" answers as the preferred response is the ``dpo`` baseline of
Maini et al. 2024, TOFU (arXiv:2401.06121), and ``DPO`` with ``unlearn/tofu/idk.yaml`` in
``locuslab/open-unlearning``. With Δ = log π_θ − log π_ref (summed answer log-probabilities), win
= a template answer, lose = the true forget answer:

* ``scale: npo`` (default, open-unlearning and the NPO repository):
  L = γ·(−(2/β)·mean log σ(β·(Δ_win − Δ_lose))) + α·R, with β = 0.1, γ = α = 1, R = retain NLL;
* ``scale: tofu``: the DPO term is −mean log σ(β·(Δ_win − Δ_lose)) without the 2/β factor. The TOFU
  original has no retain term: use ``--method.scale tofu --method.retain_loss none``.

See :func:`~obliviate.methods.losses.dpo_loss`. Both reference log-probabilities depend only on
fixed items (each forget question's template answer is drawn once per run from its seed, where
TOFU redraws it on every load), so they are computed once in :meth:`IdkDPO.prepare` and a step
runs no reference forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from obliviate.errors import ConfigError
from obliviate.methods.base import LossOutput, MethodContext, UnlearnMethod, forward_logits
from obliviate.methods.common import (
    KLPositions,
    RetainLoss,
    RetainTerm,
    check_weight,
    forget_nll_from_sequences,
    reference_sequence_nll,
)
from obliviate.methods.losses import dpo_loss, sequence_nll
from obliviate.types import Model

if TYPE_CHECKING:
    from torch import Tensor


@dataclass
class IdkDPOConfig:
    """Options of IdkDPO (defaults: open-unlearning's DPO trainer with the IDK experiment)."""

    beta: float = 0.1  # inverse temperature of the DPO log-sigmoid
    scale: Literal["npo", "tofu"] = "npo"  # npo: -(2/beta) log sigmoid (open-unlearning); tofu: -log sigmoid
    gamma: float = 1.0  # weight of the DPO term
    alpha: float = 1.0  # weight of the retain term
    retain_loss: RetainLoss = "nll"  # retain term: nll (open-unlearning), kl, or none (TOFU original)
    kl_positions: KLPositions = "all"  # retain KL over all positions (TOFU batchmean) or answer tokens

    def validate(self) -> None:
        """Reject a non-positive beta and negative weights."""
        check_weight("beta", self.beta, 0.1, positive=True)
        check_weight("gamma", self.gamma, 1.0)
        check_weight("alpha", self.alpha, 1.0)


class IdkDPO(UnlearnMethod):
    """Caches both answers' reference log-probs in ``prepare``; a step runs γ·DPO + α·retain."""

    name: ClassVar[str] = "idk_dpo"
    config_cls: ClassVar[type] = IdkDPOConfig
    uses_retain: ClassVar[bool] = True
    uses_template: ClassVar[bool] = True
    train_defaults: ClassVar[dict[str, float]] = {"lr": 1.5e-4, "epochs": 9.0, "batch_size": 8}  # 9e-5 before retain partners were redrawn per epoch

    def __init__(self, config: IdkDPOConfig) -> None:
        super().__init__(config)
        self.ref: dict[str, Tensor] = {}
        self.retain = RetainTerm(config.retain_loss, config.kl_positions)

    def prepare(self, ctx: MethodContext) -> None:
        """Cache the reference log-probabilities of the template and forget answers."""
        self.ref = reference_sequence_nll(ctx, ("template", "forget"))
        self.retain.prepare(ctx)

    def loss(self, model: Model, batch: dict[str, Any]) -> LossOutput:
        """γ·DPO(win = template, lose = forget answer) + α·retain term."""
        if not self.ref:
            raise ConfigError("IdkDPO needs its reference values: call prepare() before training")
        cfg = self.config
        w_logits, w_labels = forward_logits(model, batch["template"], answers_only=True)
        l_logits, l_labels = forward_logits(model, batch["forget"], answers_only=True)
        seq_win, seq_lose = sequence_nll(w_logits, w_labels), sequence_nll(l_logits, l_labels)
        index = batch["index"].to(seq_win.device)
        ref_win = self.ref["template"].to(seq_win.device)[index]
        ref_lose = self.ref["forget"].to(seq_win.device)[index]
        dpo = dpo_loss(-seq_win, -seq_lose, -ref_win, -ref_lose, cfg.beta, cfg.scale)
        logs = {
            "forget_nll": forget_nll_from_sequences(seq_lose, l_labels),
            "template_nll": forget_nll_from_sequences(seq_win, w_labels),
            "dpo": float(dpo.detach()),
        }
        loss, retain_logs = self.retain.add(cfg.gamma * dpo, cfg.alpha, model, batch)
        return LossOutput(loss, {**logs, **retain_logs})
