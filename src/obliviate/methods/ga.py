"""Gradient ascent on the forget set.

Maini et al. 2024, "TOFU: A Task of Fictitious Unlearning for LLMs" (arXiv:2401.06121), the
``grad_ascent`` baseline of ``locuslab/tofu`` and ``GradAscent`` of ``locuslab/open-unlearning``:

    L = −ℓ_θ(D_f)

with ℓ the mean answer-token NLL of the forget batch (:func:`obliviate.methods.losses.ga_loss`).
It needs the forget set only. Unbounded: the loss falls without limit, so gradient ascent soon
destroys the model's utility; pair it with ``--stop.forget_loss_above`` or few steps.

The official runs use lr 1e-5 for 5 (TOFU) or 10 (open-unlearning) epochs on 7B models at batch 32.
Our defaults (lr 3e-5, 5 epochs, batch 8) are set for SmolLM2-135M-sized models on a CPU; the
retain NLL rises with the forget NLL, so stop early (``--stop.forget_loss_above``) when utility
matters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from obliviate.methods.base import LossOutput, UnlearnMethod, forward_logits
from obliviate.methods.losses import ga_loss, mean_nll
from obliviate.types import Model


@dataclass
class GAConfig:
    """Gradient ascent has no options of its own (the learning rate and steps are ``--train.*``)."""


class GA(UnlearnMethod):
    """Descends −(forget NLL); uses the forget set only."""

    name: ClassVar[str] = "ga"
    config_cls: ClassVar[type] = GAConfig
    train_defaults: ClassVar[dict[str, float]] = {"lr": 3e-5, "epochs": 5.0, "batch_size": 8}

    def loss(self, model: Model, batch: dict[str, Any]) -> LossOutput:
        """−mean NLL of the forget answers."""
        logits, labels = forward_logits(model, batch["forget"], answers_only=True)
        forget_nll = mean_nll(logits, labels)
        return LossOutput(ga_loss(forget_nll), {"forget_nll": float(forget_nll.detach())})
