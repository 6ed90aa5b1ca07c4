"""LoRA adapters (peft) for any unlearning method, with LoKU's FILA initialisation.

:func:`apply_lora` wraps a model with low-rank adapters on the named linear modules and freezes
everything else. With ``init: default`` the adapters start at B = 0 (the model is unchanged).
With ``init: fila`` they start from the Fisher-weighted low-rank approximation of LoKU:

Cha et al. 2024, "Towards Robust and Parameter-Efficient Knowledge Unlearning for LLMs"
(arXiv:2408.06621, ICLR 2025), official code ``csm9493/efficient-llm-unlearning``
(``TOFU/measure_importance.py``, ``TOFU/forget.py``):

1. One pass over the forget/retain pairs sums token-weighted squared gradients (a diagonal Fisher)
   of each targeted weight: F_f += (∇ℓ(x_f))²·n_tok(x_f), F_r likewise on retain, with token counts.
2. Importance I = (F_f / n_f) / (1e-5 + F_r / n_r), per weight entry.
3. For each targeted W (d_out × d_in): row weights w = sqrt(Σ_in I); U, S, V =
   svd_lowrank(diag(w)·W, q = r); S ← S / scaling; A = (V·√S)ᵀ; B = diag(1 / (w + 1e-5))·U·√S; and
   the frozen base becomes W − scaling·B·A, so base + adapter computes the original W while the
   adapter holds the forget-important low-rank part.

``svd_lowrank`` is randomised; it runs under a fixed seed so that the same run (and a resumed one)
rebuilds the same base weights.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from obliviate.data.formatting import IGNORE_INDEX, PromptFormatter, batches, to_device
from obliviate.errors import ConfigError
from obliviate.types import Model

if TYPE_CHECKING:
    import torch
    from torch import Tensor

log = logging.getLogger(__name__)


@dataclass
class LoraOptions:
    """LoRA (peft) for any method; FILA is LoKU's Fisher-weighted initialisation."""

    enabled: bool = False  # train low-rank adapters instead of all weights
    r: int = 8  # adapter rank
    alpha: int = 16  # LoRA scaling numerator (scaling = alpha / r)
    dropout: float = 0.0  # adapter dropout
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # module names to adapt
    init: Literal["default", "fila"] = "default"  # adapter initialisation: default (B = 0) or fila (LoKU, Fisher-weighted SVD)
    save: Literal["merged", "adapter"] = "merged"  # what to save: merged (full weights) or adapter (adapter only)

    def validate(self) -> None:
        """Reject values that cannot work (``init`` and ``save`` are checked by
        :func:`obliviate.config.build`)."""
        if self.r < 1:
            raise ConfigError("lora.r must be at least 1")
        if self.alpha <= 0:
            raise ConfigError(
                f"lora.alpha must be positive (scaling = alpha / r), got {self.alpha}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"lora.dropout is a probability in [0, 1), got {self.dropout}")


FILA_SEED = 0
"""Seed of the randomised low-rank SVD of FILA."""


def linear_module_names(model: Model) -> list[str]:
    """Sorted last-component names of the model's ``torch.nn.Linear`` modules (``q_proj``, ...)."""
    import torch

    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and name
        }
    )


def resolve_targets(model: Model, targets: Sequence[str], defaults: Sequence[str]) -> list[str]:
    """The target module names to adapt, checked against the model.

    Requested names that the model lacks fail with the list of its linear modules. When the
    targets are the defaults, the ones the model has are used (at least one must exist).
    """
    available = linear_module_names(model)
    present = [t for t in targets if t in available]
    missing = [t for t in targets if t not in available]
    if missing and (tuple(targets) != tuple(defaults) or not present):
        raise ConfigError(
            f"lora.targets {', '.join(missing)} match no linear module of this model; "
            f"its linear modules are: {', '.join(available)}. Set --lora.targets to some "
            "of them (comma-separated)."
        )
    if missing:
        log.info("LoRA: the model has no %s; adapting %s", ", ".join(missing), ", ".join(present))
    return present


def _targeted_linears(model: Model, targets: Sequence[str]) -> dict[str, torch.nn.Linear]:
    import torch

    return {
        n: m
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and n.rsplit(".", 1)[-1] in targets
    }


def fisher_importance(
    model: Model,
    linears: dict[str, torch.nn.Linear],
    items: Sequence[dict[str, Any]],
    collate: Callable[[list[Any]], dict[str, Any]],
    batch_size: int = 8,
) -> dict[str, Tensor]:
    """LoKU importance I = (F_f / n_f) / (1e-5 + F_r / n_r) of each targeted linear's weight.

    Args:
        model: the model before LoRA (gradients are taken on the weights of ``linears``).
        linears: module name -> ``torch.nn.Linear``.
        items: training items with ``"forget"`` and ``"retain"`` parts.
        collate: turns items into a batch.
        batch_size: items per Fisher batch.

    Returns:
        module name -> float32 tensor shaped like its weight (on the weight's device).
    """
    import torch

    if not items or "retain" not in items[0]:
        raise ConfigError(
            "lora.init fila measures Fisher importance on forget/retain pairs, but the "
            "training items have no retain part: FILA needs a retain split. Use a method "
            "with a retain term (grad_diff, npo, simnpo, ihl, ...) on a task with a retain "
            "split, or --lora.init default."
        )
    device = next(model.parameters()).device
    was_training = model.training
    saved = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    weights = {n: m.weight for n, m in linears.items()}
    for w in weights.values():
        w.requires_grad_(True)
    sums = {
        part: {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}
        for part in ("forget", "retain")
    }
    counts = {"forget": 0, "retain": 0}
    model.eval()
    try:
        with torch.enable_grad():
            for batch in batches(items, collate, batch_size):
                for part in ("forget", "retain"):
                    inputs = to_device(batch[part], device)
                    loss = model(**inputs).loss
                    grads = torch.autograd.grad(loss, list(weights.values()), allow_unused=True)
                    n_tok = int((inputs["labels"][:, 1:] != IGNORE_INDEX).sum())
                    for (n, _), g in zip(weights.items(), grads):
                        if g is not None:
                            sums[part][n] += g.detach().float().pow(2) * n_tok
                    counts[part] += n_tok
    finally:
        for p, flag in saved.items():
            p.requires_grad_(flag)
        model.train(was_training)
    n_f, n_r = max(counts["forget"], 1), max(counts["retain"], 1)
    return {n: (sums["forget"][n] / n_f) / (1e-5 + sums["retain"][n] / n_r) for n in weights}


def fila_factors(
    weight: Tensor, importance: Tensor, r: int, scaling: float
) -> tuple[Tensor, Tensor, Tensor]:
    """FILA adapter factors and residual base of one weight.

    Args:
        weight: W, ``(d_out, d_in)``.
        importance: I, same shape.
        r: adapter rank.
        scaling: LoRA scaling (alpha / r).

    Returns:
        ``(A, B, W_base)`` in float32 with ``A`` ``(r, d_in)``, ``B`` ``(d_out, r)`` and
        ``W_base = W − scaling·B·A``.
    """
    import torch

    w32 = weight.detach().float()
    if r > min(w32.shape):
        raise ConfigError(
            f"lora.r {r} exceeds the smaller side of a {tuple(w32.shape)} weight; lower --lora.r"
        )
    row = importance.to(w32.device).float().sum(dim=1).sqrt()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(FILA_SEED)
        u, s, v = torch.svd_lowrank(row[:, None] * w32, q=r)
    root = (s / scaling).sqrt()
    a = (v * root).T.contiguous()
    b = ((1.0 / (row + 1e-5))[:, None] * (u * root)).contiguous()
    return a, b, w32 - scaling * (b @ a)


def apply_lora(
    model: Model,
    opts: LoraOptions,
    *,
    items: Sequence[dict[str, Any]] | None = None,
    collate: Callable[[list[Any]], dict[str, Any]] | None = None,
    formatter: PromptFormatter | None = None,
    fisher_batch_size: int = 8,
) -> Model:
    """Wrap ``model`` with LoRA adapters (a ``peft.PeftModel``); only the adapters train.

    Args:
        model: a transformers causal LM.
        opts: :class:`LoraOptions`.
        items: the training items (FILA measures importance on their forget/retain pairs).
        collate: turns items into a batch (needed for FILA).
        formatter: the prompt formatter the items were built with (kept for symmetry with the
            methods; the items are already tokenized).
        fisher_batch_size: items per batch of FILA's Fisher pass.
    """
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import LoraLayer

    del formatter
    opts.validate()
    if opts.init == "fila" and opts.save == "adapter":
        raise ConfigError(
            "lora.init fila rewrites the base weights (W - scaling*B*A), so the adapter alone "
            "does not reproduce the unlearned model: use --lora.save merged with FILA"
        )
    targets = resolve_targets(model, opts.targets, LoraOptions().targets)
    importance: dict[int, Tensor] = {}
    if opts.init == "fila":
        if collate is None or items is None:
            raise ConfigError("lora.init fila needs the training items and their collate function")
        linears = _targeted_linears(model, targets)
        scores = fisher_importance(model, linears, items, collate, fisher_batch_size)
        importance = {id(linears[n]): scores[n] for n in linears}
    config = LoraConfig(
        r=opts.r,
        lora_alpha=opts.alpha,
        lora_dropout=opts.dropout,
        target_modules=list(targets),
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    if importance:
        import torch

        with torch.no_grad():
            for module in peft_model.modules():
                if not isinstance(module, LoraLayer):
                    continue
                base = module.get_base_layer()
                if id(base) not in importance:
                    continue
                scaling = float(module.scaling["default"])
                a, b, w_base = fila_factors(base.weight, importance[id(base)], opts.r, scaling)
                module.lora_A["default"].weight.copy_(a)
                module.lora_B["default"].weight.copy_(b)
                base.weight.copy_(w_base.to(base.weight.dtype))
    return peft_model
