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
from typing import Any, ClassVar

from obliviate.errors import ConfigError
from obliviate.methods.base import (
    LossOutput,
    MethodContext,
    UnlearnMethod,
    forward_logits,
    register_method,
)
from obliviate.methods.grad_diff import KLPositions, RetainLoss, RetainTerm, check_weight
from obliviate.methods.losses import answer_lengths, npo_loss, sequence_nll
from obliviate.training.precision import resolve_bf16

REFERENCE_BATCH = 16
"""Items per reference forward when caching reference log-probabilities."""


def reference_sequence_nll(ctx: MethodContext, parts: tuple[str, ...]) -> dict[str, Any]:
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
    n = len(ctx.items)
    out = {p: torch.full((n,), float("nan")) for p in parts}
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
        for start in range(0, n, REFERENCE_BATCH):
            batch = ctx.collate(list(ctx.items[start : start + REFERENCE_BATCH]))
            index = batch["index"]
            for p in parts:
                part = {k: v.to(device) for k, v in batch[p].items()}
                logits, labels = forward_logits(reference, part)
                out[p][index] = sequence_nll(logits, labels).float().cpu()
    for p, values in out.items():
        if torch.isnan(values).any():
            raise ConfigError(f"reference values of part {p!r} are missing for some items: item indices must be 0..n-1")
    return out


def forget_nll_from_sequences(seq_nll: Any, labels: Any) -> float:
    """Mean per-token forget NLL (the logged ``forget_nll``) from summed per-sequence NLLs."""
    return float(seq_nll.detach().sum() / answer_lengths(labels).sum().clamp(min=1))


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
        if not self.beta > 0:
            raise ConfigError(f"method.beta must be > 0, got {self.beta}; the official value is 0.1")
        check_weight("c_npo", self.c_npo, 1.0)
        check_weight("c_retain", self.c_retain, 1.0)


@register_method("npo")
class NPO(UnlearnMethod):
    """Negative Preference Optimization with cached reference log-probs; retain none, nll or kl."""

    config_cls: ClassVar[type] = NPOConfig
    uses_retain: ClassVar[bool] = True
    train_defaults: ClassVar[dict[str, Any]] = {"lr": 6e-5, "epochs": 5.0, "batch_size": 8}

    def __init__(self, config: NPOConfig) -> None:
        super().__init__(config)
        self.ref_seq_nll: Any = None
        self.retain = RetainTerm(config.retain_loss, config.kl_positions)

    def prepare(self, ctx: MethodContext) -> None:
        """Cache S_ref of every forget item; keep the reference model only for NPO-KL."""
        self.ref_seq_nll = reference_sequence_nll(ctx, ("forget",))["forget"]
        self.retain.prepare(ctx)

    def loss(self, model: Any, batch: dict[str, Any]) -> LossOutput:
        """c_npo·NPO(forget) + c_retain·retain term."""
        if self.ref_seq_nll is None:
            raise ConfigError("NPO needs its reference values: call prepare() before training")
        cfg = self.config
        logits, labels = forward_logits(model, batch["forget"])
        seq_nll = sequence_nll(logits, labels)
        ref = self.ref_seq_nll.to(seq_nll.device)[batch["index"].to(seq_nll.device)]
        npo = npo_loss(seq_nll, ref, cfg.beta)
        logs = {"forget_nll": forget_nll_from_sequences(seq_nll, labels), "npo": float(npo.detach())}
        logs["log_ratio"] = float((seq_nll.detach() - ref).mean())
        loss, retain_logs = self.retain.add(cfg.c_npo * npo, cfg.c_retain, model, batch)
        return LossOutput(loss, {**logs, **retain_logs})
