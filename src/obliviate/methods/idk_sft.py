"""IDK fine-tuning: teach the model to answer forget questions with a refusal, keep retain.

Maini et al. 2024, "TOFU: A Task of Fictitious Unlearning for LLMs" (arXiv:2401.06121), the
``idk`` baseline of ``locuslab/tofu`` (``dataloader.py``):

    L = ℓ_θ(q_f, a_idk) + ℓ_θ(D_r)

where a_idk is one of the task's template answers ("I'm not certain about that.", the 100 lines of
TOFU's ``idontknow.jsonl``) and ℓ the mean answer NLL.

TOFU concatenates the IDK and retain batches into one forward pass, so its loss is one mean over
the union of their answer tokens: retain answers, longer than refusals, weigh more. That is our
default (``pooling: tokens``, L = (γ·Σ_idk nll + α·Σ_retain nll) / (n_idk + n_retain), exactly
TOFU's for γ = α = 1); ``pooling: separate`` weights the two per-token means instead
(γ·ℓ(idk) + α·ℓ(retain)).

One deliberate difference, for reproducibility: TOFU draws a new template answer for an item every
time it is loaded; we draw it once per item from the run's seed
(:func:`obliviate.unlearning.build_items`), so a run is a pure function of its seed.

The loss never touches the true forget answers, so the logged ``forget_nll`` (what stopping rules
and training curves read) comes from one extra forward pass without gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from obliviate.methods.base import LossOutput, UnlearnMethod, forward_logits
from obliviate.methods.common import check_weight
from obliviate.methods.losses import answer_lengths, mean_nll, sequence_nll
from obliviate.types import Model


@dataclass
class IdkSFTConfig:
    """Options of IDK fine-tuning."""

    gamma: float = 1.0  # weight of the NLL of template (refusal) answers to forget questions
    alpha: float = 1.0  # weight of the retain NLL (0: no retain term)
    pooling: Literal["tokens", "separate"] = "tokens"  # tokens: one mean over both parts' tokens (TOFU); separate: weighted sum of two means

    def validate(self) -> None:
        """Reject negative weights."""
        check_weight("gamma", self.gamma, 1.0)
        check_weight("alpha", self.alpha, 1.0)


class IdkSFT(UnlearnMethod):
    """Fits refusals to forget questions, keeps retain answers; logs the forget NLL untrained."""

    name: ClassVar[str] = "idk_sft"
    config_cls: ClassVar[type] = IdkSFTConfig
    uses_retain: ClassVar[bool] = True
    uses_template: ClassVar[bool] = True
    train_defaults: ClassVar[dict[str, float]] = {"lr": 1.3e-4, "epochs": 5.0, "batch_size": 8}

    def loss(self, model: Model, batch: dict[str, Any]) -> LossOutput:
        """NLL of template answers and of retain answers, pooled over tokens or weighted means."""
        import torch

        cfg = self.config
        logits, labels = forward_logits(model, batch["template"], answers_only=True)
        template_sum = sequence_nll(logits, labels).sum()
        template_tokens = answer_lengths(labels).sum().clamp(min=1)
        logs = {"template_nll": float(template_sum.detach() / template_tokens)}
        if cfg.alpha > 0:
            r_logits, r_labels = forward_logits(model, batch["retain"], answers_only=True)
            retain_sum = sequence_nll(r_logits, r_labels).sum()
            retain_tokens = answer_lengths(r_labels).sum().clamp(min=1)
            logs["retain_nll"] = float(retain_sum.detach() / retain_tokens)
            if cfg.pooling == "tokens":
                loss = (cfg.gamma * template_sum + cfg.alpha * retain_sum) / (
                    template_tokens + retain_tokens
                )
            else:
                loss = (
                    cfg.gamma * template_sum / template_tokens
                    + cfg.alpha * retain_sum / retain_tokens
                )
        else:
            loss = cfg.gamma * template_sum / template_tokens
        with torch.no_grad():
            f_logits, f_labels = forward_logits(model, batch["forget"], answers_only=True)
            logs["forget_nll"] = float(mean_nll(f_logits, f_labels))
        return LossOutput(loss, logs)
