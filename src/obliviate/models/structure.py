"""What a loaded model is made of: its decoder blocks, and what its forward accepts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from obliviate.errors import ModelError
from obliviate.types import Model

if TYPE_CHECKING:
    import torch


def decoder_blocks(model: Model) -> torch.nn.ModuleList:
    """The model's list of decoder blocks (``model.model.layers`` for Llama,
    through any wrapper)."""
    import torch

    for name, module in model.named_modules():
        if (
            isinstance(module, torch.nn.ModuleList)
            and len(module)
            and name.split(".")[-1] in ("layers", "h", "blocks")
        ):
            return module
    raise ModelError(
        f"{type(model).__name__} has no list of decoder blocks (model.layers or transformer.h)"
    )


def takes_logits_to_keep(model: Model) -> bool:
    """Whether the model's forward accepts transformers' ``logits_to_keep`` (output head on
    the last k positions).

    Looks through a DDP-style ``module`` wrapper at the model class's own ``forward``; a
    wrapper that hides it (a PEFT model, a custom module) gives False, and callers then
    compute every position.
    """
    import inspect

    inner = getattr(model, "module", model)
    try:
        return "logits_to_keep" in inspect.signature(type(inner).forward).parameters
    except (TypeError, ValueError):
        return False
