"""WAGLE: weight attribution picks the weights an unlearning method may change.

Jia et al. 2024, "WAGLE: Strategic Weight Attribution for Effective and Modular Unlearning in
Large Language Models" (arXiv:2410.17509, NeurIPS 2024), official code ``OPTML-Group/WAGLE``
(``src/unlearn/generate_mask.py``, ``src/unlearn/base.py``).

``prepare`` sums the gradients of the forget NLL (g_f) and of the retain NLL (g_r) over the
training items and scores every trainable weight with s = −|(θ − g_r/μ) ⊙ g_f|. The fraction
``ratio`` of weights with the lowest s (the largest |·|), chosen globally across all tensors, is
trained; ``grad_hook`` zeroes the gradient of every other weight before each optimizer step. The
objective is that of a base method (``base``, NPO by default, as in WAGLE's TOFU NPO runs),
built with its own defaults unless ``base_options`` sets some of them
(``--method.base_options.beta 0.2``).

Masked weights are bit-identical to θ₀ after training. Their gradient is zero, so AdamW's update
of them is exactly zero; AdamW's decoupled weight decay would still shrink them, so WAGLE trains
with ``weight_decay`` 0 by default, and if a user sets one, ``grad_hook`` and ``finalize`` write
their θ₀ values back (during training they drift by at most one decay step). This is a deliberate
deviation: the official code (weight decay 0.1) lets weight decay move masked weights.

Official settings: TOFU NPO+WAGLE ratio 0.95, μ = 1e-6, lr 1e-5, 5 epochs, weight decay 0.1;
WMDP ratio 0.6. The scores use the retain items paired with the forget items.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from obliviate.data.formatting import batches, to_device
from obliviate.errors import ConfigError
from obliviate.methods.base import (
    LossOutput,
    MethodContext,
    UnlearnMethod,
    forward_logits,
    resolve_method,
)
from obliviate.methods.losses import mean_nll
from obliviate.models.precision import bf16_autocast, resolve_bf16
from obliviate.types import Model

if TYPE_CHECKING:
    import torch
    from torch import Tensor


@dataclass
class WAGLEConfig:
    """Options of WAGLE."""

    base: str = "npo"  # unlearning method trained through the mask (any registered method except wagle)
    base_options: dict[str, Any] = field(default_factory=dict)  # options of the base method, e.g. {beta: 0.2}; unset ones keep its defaults
    ratio: float = 0.95  # fraction of weights trained: those with the largest |(θ − g_r/μ) ⊙ g_f| (official TOFU 0.95, WMDP 0.6)
    mu: float = 1e-6  # μ of the attribution score (official 1e-6)

    def validate(self) -> None:
        """Check the ratio, μ, and that the base method and its options exist."""
        if not 0 < self.ratio <= 1:
            raise ConfigError(
                f"method.ratio must be in (0, 1], got {self.ratio}; official values are "
                "0.95 (TOFU) and 0.6 (WMDP)"
            )
        if self.mu <= 0:
            raise ConfigError(f"method.mu must be > 0, got {self.mu}; the official value is 1e-6")
        if self.base == "wagle":
            raise ConfigError(
                "method.base cannot be wagle itself; choose a method such as npo, grad_diff or ihl"
            )
        if not isinstance(self.base_options, dict):
            raise ConfigError(
                "method.base_options must be a mapping of the base method's options, "
                f"got {self.base_options!r}"
            )
        resolve_method(self.base, self.base_options)


def gradient_sums(
    model: Model,
    params: list[Tensor],
    items: list[Any],
    collate: Any,
    part: str,
    batch_size: int,
    device: torch.device | str,
    bf16: bool = False,
) -> list[Tensor]:
    """Σ over batches of ∇ mean answer NLL on ``batch[part]``, one tensor per parameter.

    With ``bf16`` the forward and backward run under bf16 autocast, like training.
    """
    import torch

    device = torch.device(device)
    sums = [torch.zeros_like(p, dtype=torch.float32) for p in params]
    with torch.enable_grad(), bf16_autocast(device, bf16):
        for batch in batches(items, collate, batch_size):
            logits, labels = forward_logits(model, to_device(batch[part], device))
            grads = torch.autograd.grad(mean_nll(logits, labels), params, allow_unused=True)
            for total, g in zip(sums, grads):
                if g is not None:
                    total.add_(g.float())
    return sums


def top_fraction_mask(scores: list[Tensor], ratio: float) -> list[Tensor]:
    """Boolean masks keeping exactly round(ratio·N) of all N entries, the largest scores first.

    Ties at the threshold are broken by position (earlier tensors and entries first).
    """
    import torch

    flat = torch.cat([s.reshape(-1) for s in scores])
    n = flat.numel()
    k = min(n, max(1, round(ratio * n)))
    keep = torch.ones(n, dtype=torch.bool, device=flat.device)
    if k < n:
        threshold = torch.kthvalue(flat.cpu(), n - k + 1).values.to(flat.device)
        keep = flat > threshold
        need = k - int(keep.sum())
        if need > 0:
            ties = (flat == threshold).nonzero().squeeze(1)[:need]
            keep[ties] = True
    return [m.view_as(s) for m, s in zip(torch.split(keep, [s.numel() for s in scores]), scores)]


class WAGLE(UnlearnMethod):
    """Scores weights in ``prepare``, zeroes the unchosen ones' gradients, trains the base loss."""

    name: ClassVar[str] = "wagle"
    config_cls: ClassVar[type] = WAGLEConfig
    uses_retain: ClassVar[bool] = True
    has_grad_hook: ClassVar[bool] = True
    train_defaults: ClassVar[dict[str, float]] = {
        "lr": 6e-5,
        "epochs": 5.0,
        "batch_size": 8,
        "weight_decay": 0.0,
    }

    def __init__(self, config: WAGLEConfig) -> None:
        super().__init__(config)
        self.base = resolve_method(config.base, config.base_options)
        self.uses_template = self.base.uses_template  # build_items reads it from the instance
        self.kept_fraction = 1.0
        # (name, parameter, mask of frozen entries, their θ₀ values)
        self._frozen: list[tuple[str, Tensor, Tensor, Tensor]] = []
        self._decays = False  # weight decay is on, so masked weights need writing back each step

    def prepare(self, ctx: MethodContext) -> None:
        """Score every trainable weight, build the masks, then let the base method prepare."""
        if self.uses_template and ctx.items and "template" not in ctx.items[0]:
            raise ConfigError(
                f"wagle's base {self.config.base!r} needs template answers, and the training "
                "items have none; choose a base without templates (npo, grad_diff, ihl, ...)"
            )
        named = [(n, p) for n, p in ctx.model.named_parameters() if p.requires_grad]
        params = [p for _, p in named]
        if not params:
            raise ConfigError("wagle found no trainable parameters to score")
        bs, bf16 = ctx.train.batch_size, resolve_bf16(ctx.train.bf16, ctx.device)
        g_f = gradient_sums(
            ctx.model, params, ctx.items, ctx.collate, "forget", bs, ctx.device, bf16
        )
        g_r = gradient_sums(
            ctx.model, params, ctx.items, ctx.collate, "retain", bs, ctx.device, bf16
        )
        scores = [
            ((p.detach().float() - gr / self.config.mu) * gf).abs()
            for p, gf, gr in zip(params, g_f, g_r)
        ]
        del g_f, g_r
        keep = top_fraction_mask(scores, self.config.ratio)
        del scores
        self._frozen = []
        total = kept = 0
        for (name, p), k in zip(named, keep):
            total += k.numel()
            kept += int(k.sum())
            frozen = ~k
            if bool(frozen.any()):
                self._frozen.append((name, p, frozen, p.detach()[frozen].clone()))
        self.kept_fraction = kept / total
        self._decays = ctx.train.weight_decay != 0
        ctx.extra["wagle_kept_fraction"] = self.kept_fraction
        self.base.prepare(ctx)

    def frozen_entries(self) -> dict[str, Tensor]:
        """Parameter name -> boolean mask of its entries that training must not change."""
        return {name: frozen for name, _, frozen, _ in self._frozen}

    def loss(self, model: Model, batch: dict[str, Any]) -> LossOutput:
        """The base method's loss."""
        return self.base.loss(model, batch)

    def grad_hook(self, model: Model) -> None:
        """Run the base's hook, zero the masked gradients (and undo weight decay
        on masked weights)."""
        if type(self.base).has_grad_hook:
            self.base.grad_hook(model)
        self._restore(grads=True, weights=self._decays)

    def finalize(self, model: Model, ctx: MethodContext) -> Model:
        """Write θ₀ back into the masked weights, then run the base method's finalize."""
        self._restore(grads=False, weights=True)
        self._frozen = []
        return self.base.finalize(model, ctx)

    def _restore(self, grads: bool, weights: bool) -> None:
        import torch

        with torch.no_grad():
            for _, p, frozen, theta0 in self._frozen:
                if grads and p.grad is not None:
                    p.grad.masked_fill_(frozen, 0.0)
                if weights:
                    p[frozen] = theta0
