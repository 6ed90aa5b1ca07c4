"""Task-vector negation: fine-tune on the forget set, then subtract the scaled change.

Ilharco et al. 2023, "Editing Models with Task Arithmetic" (arXiv:2212.04089, ICLR 2023), as
used for unlearning by MUSE (Shi et al. 2024, arXiv:2407.06460, ``swj0419/muse_bench``
``baselines/baselines/task_vector.py``).

1. Fine-tune the target θ₀ on the forget set with plain NLL, giving θ_ft.
2. Return θ₀ − α·(θ_ft − θ₀) for every floating-point trained tensor.

There is one training loop: the method's ``loss`` *is* the fine-tuning loss
(:func:`obliviate.methods.base.sft_loss`), so the outer loop performs step 1; ``prepare`` saves θ₀
and ``finalize`` applies step 2. The logged ``forget_nll`` is therefore that of the model being
fine-tuned (it falls during training); the forgetting happens in ``finalize``.

Defaults: α = 1.0 (MUSE's ``task_vector.py``); MUSE's scripts use α = 5.0 after 10 epochs at
lr 1e-5. With LoRA (default initialisation, B = 0) the adapter's change is negated exactly by
setting B ← −α·B_ft, so that W_base + s·B·A = θ₀ − α·(θ_ft − θ₀).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from obliviate.errors import ConfigError
from obliviate.methods.base import LossOutput, MethodContext, UnlearnMethod, sft_loss
from obliviate.types import Model

if TYPE_CHECKING:
    from torch import Tensor


@dataclass
class TaskVectorConfig:
    """Options of task-vector negation."""

    alpha: float = 1.0  # scale α of the subtracted task vector (MUSE's scripts use 5.0)

    def validate(self) -> None:
        """Reject a negative scale (it would add the forget task instead of removing it)."""
        if self.alpha < 0:
            raise ConfigError(
                f"method.alpha must be >= 0, got {self.alpha}; 1.0 is the default, MUSE uses 5.0"
            )


class TaskVector(UnlearnMethod):
    """Fine-tune on the forget set (the training loop), then negate the change in ``finalize``."""

    name: ClassVar[str] = "task_vector"
    config_cls: ClassVar[type] = TaskVectorConfig
    train_defaults: ClassVar[dict[str, float]] = {"lr": 7e-5, "epochs": 10.0, "batch_size": 8}

    def __init__(self, config: TaskVectorConfig) -> None:
        super().__init__(config)
        self._theta0: dict[str, Tensor] = {}
        self._lora_b: set[str] = set()

    def prepare(self, ctx: MethodContext) -> None:
        """Save θ₀: a copy of every trainable floating-point tensor."""
        self._theta0 = {
            name: p.detach().clone()
            for name, p in ctx.model.named_parameters()
            if p.requires_grad and p.is_floating_point()
        }
        if not self._theta0:
            raise ConfigError(
                "task_vector found no trainable floating-point parameters to fine-tune"
            )
        self._lora_b = {name for name in self._theta0 if "lora_B" in name}
        for name in self._lora_b:
            if bool(self._theta0[name].any()):
                raise ConfigError(
                    "task_vector with LoRA needs adapters that start at zero (lora.init "
                    "default); lora.init fila starts them elsewhere, so their change "
                    "cannot be negated exactly"
                )

    def loss(self, model: Model, batch: dict[str, Any]) -> LossOutput:
        """Plain NLL on the forget answers (the fine-tuning of step 1)."""
        out = sft_loss(model, batch)
        return LossOutput(out.loss, {"forget_nll": out.logs["nll"]})

    def finalize(self, model: Model, ctx: MethodContext) -> Model:
        """Replace each trained tensor θ_ft by θ₀ − α·(θ_ft − θ₀) (LoRA B: −α·B_ft)."""
        import torch

        if not self._theta0:
            raise ConfigError("task_vector.finalize ran before prepare: θ₀ was never saved")
        alpha = self.config.alpha
        params = dict(model.named_parameters())
        missing = [name for name in self._theta0 if name not in params]
        if missing:
            raise ConfigError(
                f"task_vector: the model lost parameters {missing[:3]} during training"
            )
        with torch.no_grad():
            for name, theta0 in self._theta0.items():
                p = params[name]
                if name in self._lora_b:
                    new = -alpha * p.float()
                else:
                    t0 = theta0.float()
                    new = t0 - alpha * (p.float() - t0)
                p.copy_(new.to(p.dtype))
        self._theta0 = {}
        return model
