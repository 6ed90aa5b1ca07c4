"""Parts shared by several methods: the retain term, loss-weight checks and reference caches.

- :class:`RetainTerm` (with :func:`retain_term`): the "none | nll | kl" retain part of
  ``grad_diff``, ``kl``, ``npo``, ``simnpo`` and ``idk_dpo``;
- :func:`ascent_with_retain`: the loss of ``grad_diff`` and ``kl``;
- :func:`check_weight`: the range check of every loss weight and inverse temperature;
- :func:`reference_sequence_nll`: summed answer NLLs of the frozen reference model, cached once in
  ``prepare`` (``npo``, ``idk_dpo``), and :func:`forget_nll_from_sequences`, the logged forget NLL
  of the sequence-level methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from obliviate.data.formatting import IGNORE_INDEX, batches, to_device
from obliviate.errors import ConfigError
from obliviate.methods.base import LossOutput, MethodContext, forward_logits
from obliviate.methods.losses import (
    answer_lengths,
    grad_diff_loss,
    kl_retain,
    mean_nll,
    sequence_nll,
)
from obliviate.models.precision import bf16_autocast, resolve_bf16
from obliviate.types import Model

if TYPE_CHECKING:
    from torch import Tensor

RetainLoss = Literal["none", "nll", "kl"]
KLPositions = Literal["all", "answer"]


def retain_term(
    model: Model,
    batch: dict[str, Any],
    kind: RetainLoss,
    reference: Model | None = None,
    kl_positions: KLPositions = "all",
) -> tuple[Tensor | None, dict[str, float]]:
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
    # a KL reads every position (TOFU's batchmean), an NLL only the answers
    logits, labels = forward_logits(model, batch["retain"], answers_only=kind == "nll")
    nll = mean_nll(logits, labels)
    if kind == "nll":
        return nll, {"retain_nll": float(nll.detach())}
    if kind != "kl":
        raise ConfigError(f"retain_loss must be none, nll or kl, not {kind!r}")
    if reference is None:
        raise ConfigError(
            "retain_loss kl needs the reference model; call prepare() before training"
        )
    part = batch["retain"]
    if next(reference.parameters()).device != part["input_ids"].device:
        reference.to(part["input_ids"].device)
    with torch.no_grad():
        ref_logits, _ = forward_logits(reference, part)
    mask = labels != IGNORE_INDEX if kl_positions == "answer" else None
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

    def __init__(self, kind: RetainLoss, kl_positions: KLPositions = "all") -> None:
        self.kind = kind
        self.kl_positions = kl_positions
        self.reference: Model | None = None

    def prepare(self, ctx: MethodContext) -> None:
        """Keep the frozen reference model when the term is a KL."""
        if self.kind == "kl":
            self.reference = ctx.make_reference()

    def __call__(
        self, model: Model, batch: dict[str, Any]
    ) -> tuple[Tensor | None, dict[str, float]]:
        """``(term or None, logs)``: see :func:`retain_term`."""
        return retain_term(model, batch, self.kind, self.reference, self.kl_positions)

    def add(
        self, loss: Tensor, weight: float, model: Model, batch: dict[str, Any]
    ) -> tuple[Tensor, dict[str, float]]:
        """``loss + weight · term`` (``loss`` alone for ``"none"``) and the term's logs."""
        term, logs = self(model, batch)
        return (loss if term is None else loss + weight * term), logs


def ascent_with_retain(
    model: Model, batch: dict[str, Any], retain: RetainTerm, gamma: float, alpha: float
) -> LossOutput:
    """γ·(−forget NLL) + α·retain term (:func:`~obliviate.methods.losses.grad_diff_loss`).

    The loss of ``grad_diff`` and ``kl``; with a ``"none"`` retain term it is γ·(−forget NLL).
    """
    logits, labels = forward_logits(model, batch["forget"], answers_only=True)
    forget_nll = mean_nll(logits, labels)
    term, logs = retain(model, batch)
    loss = gamma * -forget_nll if term is None else grad_diff_loss(forget_nll, term, gamma, alpha)
    return LossOutput(loss, {"forget_nll": float(forget_nll.detach()), **logs})


def check_weight(name: str, value: float, official: float, *, positive: bool = False) -> None:
    """Reject a negative loss weight (with ``positive``, also 0: an inverse temperature β).

    The message names the option and its official value.
    """
    if value < 0 or (positive and not value > 0):
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(
            f"method.{name} must be {bound}, got {value}; the official value is {official}"
        )


REFERENCE_BATCH = 16
"""Items per reference forward when caching reference log-probabilities."""


def reference_sequence_nll(ctx: MethodContext, parts: tuple[str, ...]) -> dict[str, Tensor]:
    """Summed answer NLL of the frozen reference model on every training item, computed once.

    Runs ``ctx.make_reference()`` in inference mode over ``ctx.items`` in batches (under the same
    bf16 autocast as training, so that the log-ratio is 0 at step 0), for each named part of the
    items (``"forget"``, ``"template"``).

    Returns:
        part -> float32 tensor of shape ``(len(items),)``, position ``i`` holding the value of the
        item whose ``index`` is ``i`` (index a batch's values with ``batch["index"]``).
    """
    import torch

    reference = ctx.make_reference()
    device = torch.device(ctx.device)
    reference.to(device)
    use_bf16 = resolve_bf16(ctx.train.bf16, device)
    out = {p: torch.full((len(ctx.items),), float("nan")) for p in parts}
    with torch.inference_mode(), bf16_autocast(device, use_bf16):
        for batch in batches(ctx.items, ctx.collate, REFERENCE_BATCH):
            for p in parts:
                logits, labels = forward_logits(
                    reference, to_device(batch[p], device), answers_only=True
                )
                out[p][batch["index"]] = sequence_nll(logits, labels).float().cpu()
    for p, values in out.items():
        if torch.isnan(values).any():
            raise ConfigError(
                f"reference values of part {p!r} are missing for some items: "
                "item indices must be 0..n-1"
            )
    return out


def forget_nll_from_sequences(seq_nll: Tensor, labels: Tensor) -> float:
    """Mean per-token forget NLL (the logged ``forget_nll``) from summed per-sequence NLLs."""
    return float(seq_nll.detach().sum() / answer_lengths(labels).sum().clamp(min=1))
