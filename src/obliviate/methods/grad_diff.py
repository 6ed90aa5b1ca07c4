"""Gradient difference: gradient ascent on the forget set, descent on a retain term.

Maini et al. 2024, "TOFU: A Task of Fictitious Unlearning for LLMs" (arXiv:2401.06121), the
``grad_diff`` baseline of ``locuslab/tofu`` and ``GradDiff`` of ``locuslab/open-unlearning``:

    L = γ·(−ℓ_θ(D_f)) + α·R,   R = ℓ_θ(D_r) (retain NLL)  or  KL(p_ref ‖ p_θ) on retain inputs

with γ = α = 1 by default (``configs/trainer/GradDiff.yaml``). ``retain_loss: kl`` is the TOFU
"KL" method (also registered on its own as ``kl``). Each forget item is paired with one retain item
as TOFU does (see :func:`obliviate.unlearning.build_items`).

The KL follows TOFU's ``batchmean`` over all B·T positions, prompt and padding included
(``kl_positions: all``); ``kl_positions: answer`` averages over retain answer tokens only, which
does not depend on padding. Unlike open-unlearning's KL path, the retain batch runs through the
trained model once: its logits give both the KL and the logged retain NLL.

This module also holds :func:`retain_term`, the retain part shared by every method with a
"none | nll | kl" retain option (``kl``, ``npo``, ``simnpo``, ``idk_dpo``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from obliviate.errors import ConfigError
from obliviate.methods.base import (
    LossOutput,
    MethodContext,
    UnlearnMethod,
    forward_logits,
    register_method,
)
from obliviate.methods.losses import grad_diff_loss, kl_retain, mean_nll

RetainLoss = Literal["none", "nll", "kl"]
KLPositions = Literal["all", "answer"]


def retain_term(
    model: Any,
    batch: dict[str, Any],
    kind: str,
    reference: Any = None,
    kl_positions: str = "all",
) -> tuple[Any, dict[str, float]]:
    """The retain part of a loss and its logs.

    Args:
        model: the model being trained.
        batch: a training batch holding ``batch["retain"]``.
        kind: ``"nll"`` (mean retain answer NLL), ``"kl"`` (KL(p_ref ‖ p_θ) on the retain inputs)
            or ``"none"``.
        reference: the frozen reference model, needed for ``"kl"``.
        kl_positions: ``"all"`` (TOFU's batchmean over every position) or ``"answer"``.

    Returns:
        ``(loss, logs)``: the scalar term (None for ``"none"``) and ``retain_nll`` (plus
        ``retain_kl`` for ``"kl"``) as floats.
    """
    import torch

    if kind == "none":
        return None, {}
    logits, labels = forward_logits(model, batch["retain"])
    nll = mean_nll(logits, labels)
    if kind == "nll":
        return nll, {"retain_nll": float(nll.detach())}
    if kind != "kl":
        raise ConfigError(f"retain_loss must be none, nll or kl, not {kind!r}")
    if reference is None:
        raise ConfigError("retain_loss kl needs the reference model; call prepare() before training")
    part = batch["retain"]
    if next(reference.parameters()).device != part["input_ids"].device:
        reference.to(part["input_ids"].device)
    with torch.no_grad():
        ref_logits, _ = forward_logits(reference, part)
    mask = labels != -100 if kl_positions == "answer" else None
    kl = kl_retain(logits, ref_logits, mask)
    return kl, {"retain_nll": float(nll.detach()), "retain_kl": float(kl.detach())}


class RetainTerm:
    """The retain part of a method's loss, with the frozen reference model a KL needs.

    Methods hold one (composition, not a base class): ``prepare`` keeps the reference only for a
    KL term, ``__call__`` returns :func:`retain_term`, ``add`` adds it with a weight to a loss.

    Args:
        kind: ``"none"``, ``"nll"`` or ``"kl"``.
        kl_positions: ``"all"`` or ``"answer"`` (for ``"kl"``).
    """

    def __init__(self, kind: str, kl_positions: str = "all") -> None:
        self.kind = kind
        self.kl_positions = kl_positions
        self.reference: Any = None

    def prepare(self, ctx: MethodContext) -> None:
        """Keep the frozen reference model when the term is a KL."""
        if self.kind == "kl":
            self.reference = ctx.make_reference()

    def __call__(self, model: Any, batch: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        """``(term or None, logs)``: see :func:`retain_term`."""
        return retain_term(model, batch, self.kind, self.reference, self.kl_positions)

    def add(self, loss: Any, weight: float, model: Any, batch: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        """``loss + weight · term`` (``loss`` alone for ``"none"``) and the term's logs."""
        term, logs = self(model, batch)
        return (loss if term is None else loss + weight * term), logs


def check_weight(name: str, value: float, official: float) -> None:
    """Reject a negative loss weight with a message naming the official value."""
    if value < 0:
        raise ConfigError(f"method.{name} must be >= 0, got {value}; the official value is {official}")


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


@register_method("grad_diff", aliases=("graddiff", "gd"))
class GradDiff(UnlearnMethod):
    """Gradient difference: ascent on forget answers, descent on retain NLL or KL (TOFU)."""

    config_cls: ClassVar[type] = GradDiffConfig
    uses_retain: ClassVar[bool] = True
    train_defaults: ClassVar[dict[str, Any]] = {"lr": 6e-5, "epochs": 5.0, "batch_size": 8}

    def __init__(self, config: GradDiffConfig) -> None:
        super().__init__(config)
        self.retain = RetainTerm(config.retain_loss, config.kl_positions)

    def prepare(self, ctx: MethodContext) -> None:
        """Keep the frozen reference model when the retain term is a KL."""
        self.retain.prepare(ctx)

    def loss(self, model: Any, batch: dict[str, Any]) -> LossOutput:
        """γ·(−forget NLL) + α·retain term."""
        logits, labels = forward_logits(model, batch["forget"])
        forget_nll = mean_nll(logits, labels)
        cfg = self.config
        retain, logs = self.retain(model, batch)
        if retain is None:
            loss = cfg.gamma * -forget_nll
        else:
            loss = grad_diff_loss(forget_nll, retain, cfg.gamma, cfg.alpha)
        return LossOutput(loss, {"forget_nll": float(forget_nll.detach()), **logs})
