"""Loss math of every training-based unlearning method, as pure functions on tensors.

Conventions shared by every function here:

* ``logits`` have shape ``(B, T, V)`` and are already aligned with ``labels`` of shape ``(B, T)``:
  the caller has shifted them, so ``logits[:, t]`` predicts ``labels[:, t]``.
* ``labels`` hold :data:`IGNORE_INDEX` (-100) at positions that do not count (prompt, padding).
* Softmaxes are taken in float32 whatever the logits' dtype, like Hugging Face's own loss.
* Reference-model inputs (``ref_logits``, ``ref_seq_nll``, ...) are used as given; compute them
  under ``torch.no_grad()``.

Formulas and their sources are in ``reference/methods-and-metrics.md`` sections 1, 2 and 6.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from obliviate.data.formatting import IGNORE_INDEX
from obliviate.errors import ConfigError
from obliviate.registry import Registry, suggest


def _check_aligned(logits: Tensor, labels: Tensor) -> None:
    if logits.dim() != 3 or logits.shape[:2] != labels.shape:
        raise ValueError(
            f"logits must be (B, T, V) and labels (B, T) with the same B and T; got "
            f"{tuple(logits.shape)} and {tuple(labels.shape)}. Shift them first "
            "(logits[:, :-1] with labels[:, 1:])."
        )


def _check_beta(beta: float) -> None:
    if not beta > 0:
        raise ConfigError(f"beta must be > 0, got {beta}; a typical value is 0.1.")


def _reduce_positions(per_position: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of a ``(B, T)`` tensor over all B·T positions, or over the masked ones only."""
    if mask is None:
        return per_position.sum() / per_position.numel()
    if mask.shape != per_position.shape:
        raise ValueError(f"mask must be {tuple(per_position.shape)}, got {tuple(mask.shape)}.")
    mask = mask.bool()
    kept = torch.where(mask, per_position, torch.zeros_like(per_position))
    return kept.sum() / mask.sum().clamp(min=1)


# --------------------------------------------------------------------------- token statistics


def token_logprobs(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Log-probability of each label token (Maini et al. 2024, arXiv:2401.06121, §1 primitives).

    Args:
        logits: ``(B, T, V)`` aligned logits.
        labels: ``(B, T)`` token ids, :data:`IGNORE_INDEX` where ignored.

    Returns:
        ``(logprobs, mask)``: ``(B, T)`` log π(y_t), 0 at ignored positions, and the ``(B, T)``
        boolean mask of the positions that count.
    """
    _check_aligned(logits, labels)
    b, t, v = logits.shape
    nll = F.cross_entropy(
        logits.float().reshape(b * t, v),
        labels.reshape(b * t),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )
    return -nll.view(b, t), labels != IGNORE_INDEX


def sequence_nll(logits: Tensor, labels: Tensor) -> Tensor:
    """Summed NLL per sequence, S_θ(x, y) = −Σ_t log π_θ(y_t | x, y_<t) (TOFU ``get_batch_loss``).

    Returns:
        ``(B,)`` tensor; log π_θ(y|x) = −S_θ.
    """
    logprobs, _ = token_logprobs(logits, labels)
    return -logprobs.sum(dim=-1)


def mean_nll(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean NLL over all non-ignored tokens of the batch, ℓ(x) (what ``model(**x).loss`` gives).

    A batch with no counted token gives 0 rather than NaN.
    """
    logprobs, mask = token_logprobs(logits, labels)
    return -logprobs.sum() / mask.sum().clamp(min=1)


def answer_lengths(labels: Tensor) -> Tensor:
    """Number of counted tokens per sequence, |y|, as a ``(B,)`` float tensor."""
    return (labels != IGNORE_INDEX).sum(dim=-1).float()


def kl_retain(logits: Tensor, ref_logits: Tensor, mask: Tensor | None = None) -> Tensor:
    """Retain KL, KL(p_ref ‖ p_θ), of TOFU's "KL" method (Maini et al. 2024, arXiv:2401.06121).

    With ``mask=None`` this is exactly TOFU's ``F.kl_div(..., reduction='batchmean',
    log_target=True)`` on the flattened ``(B·T, V)`` log-softmaxes: the per-position KL summed over
    all B·T positions, prompt and padding included, divided by B·T. The value therefore shrinks as
    padding grows. With a ``(B, T)`` boolean ``mask`` it averages over the masked positions only,
    which does not depend on padding.
    """
    if logits.shape != ref_logits.shape or logits.dim() != 3:
        raise ValueError(
            f"logits and ref_logits must both be (B, T, V); got {tuple(logits.shape)} "
            f"and {tuple(ref_logits.shape)}."
        )
    logp = F.log_softmax(logits.float(), dim=-1)
    ref_logp = F.log_softmax(ref_logits.float(), dim=-1)
    per_position = (ref_logp.exp() * (ref_logp - logp)).sum(dim=-1)
    return _reduce_positions(per_position, mask)


def uniform_kl(logits: Tensor, mask: Tensor | None = None) -> Tensor:
    """KL(U ‖ p_θ) from the uniform distribution over the vocabulary, used by ULD-style losses.

    Per position it is −log V − mean_v log p_θ(v). Reduced like :func:`kl_retain`: ``batchmean``
    over the flattened B·T positions, or the mean over ``mask``-ed positions.
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must be (B, T, V), got {tuple(logits.shape)}.")
    logp = F.log_softmax(logits.float(), dim=-1)
    per_position = -math.log(logits.shape[-1]) - logp.mean(dim=-1)
    return _reduce_positions(per_position, mask)


# --------------------------------------------------------------------------- GA, GradDiff


def ga_loss(forget_nll: Tensor) -> Tensor:
    """Gradient ascent, L = −ℓ_θ(D_f) (TOFU baseline; Maini et al. 2024, arXiv:2401.06121)."""
    return -forget_nll


def grad_diff_loss(
    forget_nll: Tensor, retain_loss: Tensor, gamma: float = 1.0, alpha: float = 1.0
) -> Tensor:
    """Gradient difference, L = γ·(−ℓ_θ(D_f)) + α·retain_loss (Maini et al. 2024, 2401.06121).

    ``retain_loss`` is the retain NLL ℓ_θ(D_r) or, for the KL variant, :func:`kl_retain`.
    """
    return gamma * (-forget_nll) + alpha * retain_loss


# --------------------------------------------------------------------------- preference losses


def npo_loss(seq_nll: Tensor, ref_seq_nll: Tensor, beta: float) -> Tensor:
    """Negative Preference Optimization (Zhang et al. 2024, arXiv:2404.05868).

    L = −(2/β)·mean_batch log σ(β·r) with r = S_θ − S_ref = −log(π_θ/π_ref), the summed per-sequence
    NLLs of :func:`sequence_nll`. Raising S_θ (forgetting) lowers the loss; as β → 0 the gradient
    tends to that of gradient ascent on S_θ.
    """
    _check_beta(beta)
    if seq_nll.shape != ref_seq_nll.shape:
        raise ValueError(
            f"seq_nll {tuple(seq_nll.shape)} and ref_seq_nll {tuple(ref_seq_nll.shape)} differ."
        )
    log_ratio = seq_nll - ref_seq_nll
    return -(2.0 / beta) * F.logsigmoid(beta * log_ratio).mean()


def simnpo_loss(seq_nll: Tensor, lengths: Tensor, beta: float, delta: float = 0.0) -> Tensor:
    """SimNPO, reference-free NPO (Fan et al. 2024, arXiv:2410.07163).

    L = −(2/β)·mean_batch log σ(β·(S_θ/|y| − δ)), with ``lengths`` = |y| (:func:`answer_lengths`)
    and δ the margin the official config calls ``gamma``.
    """
    _check_beta(beta)
    normalized = seq_nll / lengths.to(seq_nll.dtype).clamp(min=1) - delta
    return -(2.0 / beta) * F.logsigmoid(beta * normalized).mean()


DPO_SCALES = ("npo", "tofu")
"""Valid ``scale`` values of :func:`dpo_loss`."""


def dpo_loss(
    logp_win: Tensor,
    logp_lose: Tensor,
    ref_logp_win: Tensor,
    ref_logp_lose: Tensor,
    beta: float,
    scale: str = "npo",
) -> Tensor:
    """DPO (Rafailov et al. 2023, arXiv:2305.18290) as used for unlearning (IdkDPO).

    With Δ = log π_θ − log π_ref (summed per-sequence log-probabilities, win = template answer,
    lose = forget answer) and x = β·(Δ_win − Δ_lose):

    * ``scale="npo"``: −(2/β)·mean log σ(x), as in the NPO repository and open-unlearning;
    * ``scale="tofu"``: −mean log σ(x), the TOFU original (Maini et al. 2024, arXiv:2401.06121).
    """
    _check_beta(beta)
    if scale not in DPO_SCALES:
        raise ConfigError(
            f"unknown DPO scale {scale!r}.{suggest(scale, list(DPO_SCALES))} "
            f"Valid scales: {', '.join(DPO_SCALES)}."
        )
    margin = (logp_win - ref_logp_win) - (logp_lose - ref_logp_lose)
    loss = -F.logsigmoid(beta * margin).mean()
    return loss * (2.0 / beta) if scale == "npo" else loss


# --------------------------------------------------------------------------- IHL (LoKU)


def ihl_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Inverted hinge loss of LoKU (Cha et al. 2024, arXiv:2408.06621, ICLR 2025).

    L = mean over counted tokens of max(0, 1 + p(y_t) − max_{v≠y_t} p(v)), with p = softmax.
    """
    _check_aligned(logits, labels)
    mask = labels != IGNORE_INDEX
    index = labels.masked_fill(~mask, 0).unsqueeze(-1)
    probs = F.softmax(logits.float(), dim=-1)
    p_true = probs.gather(-1, index).squeeze(-1)
    p_other = probs.scatter(-1, index, float("-inf")).amax(dim=-1)
    hinge = (1.0 + p_true - p_other).clamp(min=0.0)
    return _reduce_positions(hinge, mask)


# --------------------------------------------------------------------------- FLAT


def mean_token_prob(logits: Tensor, labels: Tensor, over: str = "answer") -> Tensor:
    """Mean token probability P̄(y|x) of FLAT (Wang et al. 2024, arXiv:2410.11143, ICLR 2025).

    Args:
        logits: ``(B, T, V)`` aligned logits.
        labels: ``(B, T)`` labels, :data:`IGNORE_INDEX` where ignored.
        over: ``"answer"`` averages p_θ(y_t) over counted tokens only (our default; independent of
            padding). ``"all"`` divides by all T positions, ignored ones counting 0, as FLAT's
            official ``ProbLossStable`` averaging does (so it depends on the padding length).

    Returns:
        ``(B,)`` tensor of P̄ per sequence.
    """
    if over not in ("answer", "all"):
        raise ConfigError(f"over must be 'answer' or 'all', got {over!r}.")
    logprobs, mask = token_logprobs(logits, labels)
    probs = torch.where(mask, logprobs.exp(), torch.zeros_like(logprobs))
    if over == "all":
        return probs.sum(dim=-1) / labels.shape[-1]
    return probs.sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)


_LOG2 = math.log(2.0)

Divergence = tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]

F_DIVERGENCES: Registry[Divergence] = Registry("f-divergence")
"""f-divergence name -> (g, φ) exactly as coded in FLAT's ``get_contrastive_loss``.

φ is applied to P_f directly (FLAT's ``conjugate``), not to g(P_f).
"""

for _name, _aliases, _help, _pair in (
    ("kl", (), "Kullback-Leibler", (lambda x: x, lambda x: torch.exp(x - 1.0))),
    ("reverse_kl", (), "reverse Kullback-Leibler", (lambda x: -torch.exp(x), lambda x: -1.0 - x)),
    ("pearson", (), "Pearson chi-squared", (lambda x: x, lambda x: x * x / 4.0 + x)),
    ("jeffrey", (), "Jeffrey", (lambda x: x, lambda x: x + x * x / 4.0 + x * x * x / 16.0)),
    (
        "squared_hellinger",
        (),
        "squared Hellinger",
        (lambda x: 1.0 - torch.exp(x), lambda x: (1.0 - torch.exp(x)) / torch.exp(x)),
    ),
    (
        "neyman",
        (),
        "Neyman chi-squared",
        (lambda x: 1.0 - torch.exp(x), lambda x: 2.0 - 2.0 * torch.sqrt(1.0 - x)),
    ),
    (
        "jensen_shannon",
        ("jenson_shannon", "js"),
        "Jensen-Shannon",
        (lambda x: _LOG2 - F.softplus(-x), lambda x: x + F.softplus(-x) - _LOG2),
    ),
    (
        "total_variation",
        ("tv",),
        "total variation",
        (lambda x: torch.tanh(x) / 2.0, lambda x: torch.tanh(x) / 2.0),
    ),
):
    F_DIVERGENCES.add(_name, _pair, aliases=_aliases, help=_help)


def resolve_divergence(name: str) -> str:
    """Canonical f-divergence name; accepts FLAT's spellings ("Total-Variation",
    "Jenson-Shannon")."""
    return F_DIVERGENCES.canonical(name.strip().lower().replace("-", "_").replace(" ", "_"))


def flat_loss(
    p_template: Tensor, p_forget: Tensor, divergence: str, pool_batch: bool = False
) -> Tensor:
    """FLAT loss adjustment (Wang et al. 2024, arXiv:2410.11143, ICLR 2025).

    L = −mean g(P_e) + mean φ(P_f), where P_e = P̄ on (forget question, template answer) and
    P_f = P̄ on (forget question, forget answer), both from :func:`mean_token_prob`.

    Args:
        p_template: P_e, ``(B,)`` (or any shape).
        p_forget: P_f, ``(B,)`` (or any shape).
        divergence: a key of :data:`F_DIVERGENCES` (FLAT's spellings accepted).
        pool_batch: average P over the batch before applying g and φ. FLAT's official code does
            this (it pools every position of the batch into one scalar, which with ``over="all"``
            equals the batch mean of the per-sequence P̄). False applies g, φ per sequence.
    """
    g, phi = F_DIVERGENCES.get(resolve_divergence(divergence))
    if pool_batch:
        p_template, p_forget = p_template.mean(), p_forget.mean()
    return -g(p_template).mean() + phi(p_forget).mean()


# --------------------------------------------------------------------------- RMU


def rmu_control_vector(
    hidden_size: int, coeff: float, generator: torch.Generator | None = None
) -> Tensor:
    """RMU control vector u = c·u/‖u‖ with u ~ U[0,1)^d (Li et al. 2024, arXiv:2403.03218)."""
    if hidden_size <= 0:
        raise ConfigError(f"hidden_size must be positive, got {hidden_size}.")
    u = torch.rand(hidden_size, generator=generator)
    return coeff * u / u.norm()


def _activation_mse(a: Tensor, b: Tensor, mask: Tensor | None) -> Tensor:
    squared = (a.float() - b.float()).pow(2)
    if mask is None:
        return squared.mean()
    if mask.shape != squared.shape[:2]:
        raise ValueError(f"mask must be {tuple(squared.shape[:2])}, got {tuple(mask.shape)}.")
    mask = mask.bool()
    per_token = torch.where(mask, squared.mean(dim=-1), torch.zeros_like(squared[..., 0]))
    return (per_token.sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)).mean()


def rmu_loss(
    h_forget: Tensor,
    control: Tensor,
    h_retain: Tensor,
    h_retain_frozen: Tensor,
    alpha: float,
    mask_forget: Tensor | None = None,
    mask_retain: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Representation Misdirection for Unlearning (Li et al. 2024, WMDP, arXiv:2403.03218).

    L_f = MSE(h_θ(x_f), u), L_r = α·MSE(h_θ(x_r), h_frozen(x_r)), L = L_f + L_r, on the ``(B, T,
    D)`` output of one decoder block.

    Without masks the MSE is the mean over batch × seq × hidden, padding included (original WMDP
    code). With a ``(B, T)`` mask it is open-unlearning's form: per sequence, the mean over masked
    positions × hidden, then the mean over the batch.

    Args:
        h_forget: activations of the trained model on forget inputs.
        control: control vector ``(D,)`` (:func:`rmu_control_vector`), or broadcastable to h_forget.
        h_retain: activations of the trained model on retain inputs.
        h_retain_frozen: activations of the frozen model on the same retain inputs.
        alpha: retain weight α.
        mask_forget: optional ``(B, T)`` mask of forget positions that count.
        mask_retain: optional ``(B, T)`` mask of retain positions that count.

    Returns:
        ``(total, forget_term, retain_term)`` with ``retain_term`` already weighted by α, so that
        ``total = forget_term + retain_term``.
    """
    if h_retain.shape != h_retain_frozen.shape:
        raise ValueError(
            f"h_retain {tuple(h_retain.shape)} and h_retain_frozen "
            f"{tuple(h_retain_frozen.shape)} differ."
        )
    target = control.to(device=h_forget.device, dtype=h_forget.dtype).expand_as(h_forget)
    forget_term = _activation_mse(h_forget, target, mask_forget)
    retain_term = alpha * _activation_mse(h_retain, h_retain_frozen, mask_retain)
    return forget_term + retain_term, forget_term, retain_term
