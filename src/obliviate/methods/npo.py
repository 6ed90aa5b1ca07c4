"""Negative Preference Optimization: NPO, NPO-RT (retain NLL) and NPO-KL (retain KL).

Zhang, Lin, Bai and Mei 2024, "Negative Preference Optimization: From Catastrophic Collapse to
Effective Unlearning" (arXiv:2404.05868), official code ``licong-lin/negative-preference-
optimization`` (``TOFU/dataloader.py``):

    L = c_npo·(−(2/β)·mean log σ(β·(S_θ − S_ref))) + c_retain·R

with S the summed answer NLL of a forget sequence (:func:`~obliviate.methods.losses.npo_loss`) and
R nothing (``retain_loss: none``, plain NPO), the retain NLL (``nll``, NPO-RT, the paper's
"NPO+RT" and open-unlearning's ``NPO``) or KL(p_ref ‖ p_θ) on retain inputs (``kl``, NPO-KL).
Defaults follow the official TOFU config and open-unlearning's ``NPO.yaml``: β = 0.1,
c_npo = c_retain = 1, retain NLL, π_ref = the model before unlearning.

S_ref depends only on the fixed forget items, so it is computed once in :meth:`NPO.prepare` and a
training step runs no reference forward (the official code recomputes it every step). NPO-KL still
needs the live reference model for its retain KL. MUSE's ``npo`` averages raw logit differences
instead of a sequence log-ratio (reference §6); we implement the paper's sequence form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

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
from obliviate.methods.losses import npo_loss, sequence_nll
from obliviate.types import Model

if TYPE_CHECKING:
    from torch import Tensor


@dataclass
class NPOConfig:
    """Options of NPO and its retain-regularised variants."""

    beta: float = 0.1  # inverse temperature of the log-sigmoid (official: 0.1)
    retain_loss: RetainLoss = "nll"  # none (NPO), nll (NPO-RT, open-unlearning NPO) or kl (NPO-KL)
    c_npo: float = 1.0  # weight of the NPO forget term
    c_retain: float = 1.0  # weight of the retain term
    kl_positions: KLPositions = "all"  # NPO-KL: KL over all positions (TOFU batchmean) or answer tokens

    def validate(self) -> None:
        """Reject a non-positive beta and negative weights."""
        check_weight("beta", self.beta, 0.1, positive=True)
        check_weight("c_npo", self.c_npo, 1.0)
        check_weight("c_retain", self.c_retain, 1.0)


class NPO(UnlearnMethod):
    """Caches S_ref of every forget item in ``prepare``: a step runs no reference forward."""

    name: ClassVar[str] = "npo"
    config_cls: ClassVar[type] = NPOConfig
    uses_retain: ClassVar[bool] = True
    train_defaults: ClassVar[dict[str, float]] = {"lr": 6e-5, "epochs": 5.0, "batch_size": 8}

    def __init__(self, config: NPOConfig) -> None:
        super().__init__(config)
        self.ref_seq_nll: Tensor | None = None
        self.retain = RetainTerm(config.retain_loss, config.kl_positions)

    def prepare(self, ctx: MethodContext) -> None:
        """Cache S_ref of every forget item; keep the reference model only for NPO-KL."""
        self.ref_seq_nll = reference_sequence_nll(ctx, ("forget",))["forget"]
        self.retain.prepare(ctx)

    def loss(self, model: Model, batch: dict[str, Any]) -> LossOutput:
        """c_npo·NPO(forget) + c_retain·retain term."""
        if self.ref_seq_nll is None:
            raise ConfigError("NPO needs its reference values: call prepare() before training")
        cfg = self.config
        logits, labels = forward_logits(model, batch["forget"], answers_only=True)
        seq_nll = sequence_nll(logits, labels)
        ref = self.ref_seq_nll.to(seq_nll.device)[batch["index"].to(seq_nll.device)]
        npo = npo_loss(seq_nll, ref, cfg.beta)
        logs = {
            "forget_nll": forget_nll_from_sequences(seq_nll, labels),
            "npo": float(npo.detach()),
        }
        logs["log_ratio"] = float((seq_nll.detach() - ref).mean())
        loss, retain_logs = self.retain.add(cfg.c_npo * npo, cfg.c_retain, model, batch)
        return LossOutput(loss, {**logs, **retain_logs})
