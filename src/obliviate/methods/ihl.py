"""Inverted hinge loss on the forget set plus retain NLL (the objective of LoKU).

Cha et al. 2024, "Towards Robust and Parameter-Efficient Knowledge Unlearning for LLMs"
(arXiv:2408.06621, ICLR 2025), official code ``csm9493/efficient-llm-unlearning``.

L = IHL(D_f) + w·ℓ_θ(D_r), with IHL = mean over forget answer tokens of
max(0, 1 + p(y_t) − max_{v≠y_t} p(v)) (:func:`obliviate.methods.losses.ihl_loss`) and w = 1 in
the official code.

LoKU is this loss trained through LoRA adapters initialised with FILA (Fisher-weighted low-rank
adaptation), which moves the forget-important low-rank part of each weight into the adapter::

    obliviate unlearn --method ihl --lora.enabled true --lora.init fila ...

The official LoKU runs (Llama-2-7B) use LoRA rank 4-32 with alpha = 2r on every projection,
lr 1e-4, 5 epochs, batch 2 x 16 accumulation, weight decay 0.01 and one warm-up epoch. Without
LoRA, ``ihl`` trains all weights with the same loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from obliviate.methods.base import LossOutput, UnlearnMethod, forward_logits
from obliviate.methods.common import check_weight
from obliviate.methods.losses import ihl_loss, mean_nll
from obliviate.types import Model


@dataclass
class IHLConfig:
    """Options of the inverted hinge loss."""

    retain_weight: float = 1.0  # weight of the retain NLL term (official: 1)

    def validate(self) -> None:
        """Reject a negative retain weight."""
        check_weight("retain_weight", self.retain_weight, 1.0)


class IHL(UnlearnMethod):
    """Hinge on each forget token's probability against the likeliest other one, plus retain NLL."""

    name: ClassVar[str] = "ihl"
    config_cls: ClassVar[type] = IHLConfig
    uses_retain: ClassVar[bool] = True
    train_defaults: ClassVar[dict[str, float]] = {"lr": 5e-5, "epochs": 5.0, "batch_size": 8}

    def loss(self, model: Model, batch: dict[str, Any]) -> LossOutput:
        """IHL on the forget answers plus the weighted retain NLL."""
        f_logits, f_labels = forward_logits(model, batch["forget"], answers_only=True)
        hinge = ihl_loss(f_logits, f_labels)
        r_logits, r_labels = forward_logits(model, batch["retain"], answers_only=True)
        retain_nll = mean_nll(r_logits, r_labels)
        loss = hinge + self.config.retain_weight * retain_nll
        logs = {
            "ihl": float(hinge.detach()),
            "forget_nll": float(mean_nll(f_logits.detach(), f_labels)),
            "retain_nll": float(retain_nll.detach()),
        }
        return LossOutput(loss, logs)
