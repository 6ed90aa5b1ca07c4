"""The attention kernel training uses: plain matmuls for short sequences on the CPU under bf16.

On the CPU under bf16 autocast, PyTorch's fused attention (``sdpa``, a flash-attention kernel)
is slow to differentiate at the short lengths of QA fine-tuning and unlearning: on SmolLM2-135M,
16 fictional QA pairs (~35 tokens each), its backward pass took 19 % of a step, and a forward and
backward pass of the upper 15 blocks took 0.68 s with transformers' ``eager`` attention (two
matmuls and a softmax) against 0.86-0.95 s with ``sdpa``; bench/peak.py's steps (8 chat-format
items): fine-tuning 1.23 s against 1.51 s, GradDiff 2.32 s against 2.88 s. In fp32 it is the other
way round (2.58 s against 2.24 s, 4.38 s against 4.15 s), so fp32 training keeps ``sdpa``. The two
compute the same function; only the rounding differs, as between two machines' kernels.

``eager`` materialises the ``[batch, heads, length, length]`` attention matrix, so it is used
only up to :data:`MAX_EAGER_LENGTH` tokens, on the CPU, under bf16, for a model that can switch
its attention at run time (transformers' attention interface); otherwise nothing changes.
Scoring and generation keep the model's own kernel (their numbers must not move).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from obliviate.types import Model

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

MAX_EAGER_LENGTH = 256
"""Longest training sequence (``train.max_length``) for which the CPU trains
with eager attention."""


def _switchable(model: Model) -> Model | None:
    """The transformers model whose attention implementation can be set at run time, or None."""
    inner = getattr(model, "module", model)  # a DDP-style wrapper
    base = inner.get_base_model() if hasattr(inner, "get_base_model") else inner  # a PEFT model
    config = getattr(base, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa" or not hasattr(
        base, "set_attn_implementation"
    ):
        return None
    can = getattr(base, "_can_set_attn_implementation", None)
    try:
        return base if can is None or can() else None
    except Exception:  # noqa: BLE001 - a model that cannot tell is left as it is
        return None


@contextlib.contextmanager
def training_attention(
    model: Model, device: torch.device | str, max_length: int, bf16: bool
) -> Iterator[str | None]:
    """Within the context, ``model`` attends with ``eager`` where that is faster (see the module:
    the CPU, bf16 autocast, ``max_length`` up to :data:`MAX_EAGER_LENGTH`); yields the
    implementation switched to (None: unchanged). The model's own is restored on exit."""
    import torch

    fast = bf16 and torch.device(device).type == "cpu" and max_length <= MAX_EAGER_LENGTH
    base = _switchable(model) if fast else None
    if base is None:
        yield None
        return
    try:
        base.set_attn_implementation("eager")
    except Exception as e:  # noqa: BLE001 - keep the model's own kernel
        log.info("training with the model's own attention (%s)", e)
        yield None
        return
    try:
        yield "eager"
    finally:
        base.set_attn_implementation("sdpa")
