"""Shared type names for the model, its tokenizer and a batch: the ground floor of the package.

These are for annotations only. They name torch and transformers types under
:data:`typing.TYPE_CHECKING`, so importing this module imports neither (``obliviate ls`` stays
free of torch); at runtime each is :data:`typing.Any`, so never use one in ``isinstance``.

- :data:`Model`: a causal LM, a Hugging Face ``PreTrainedModel`` (the tiny model is one) or a
  wrapper that stands in for one (a PEFT model). mypy does not analyse transformers (see
  pyproject.toml), so for now it checks as ``Any``: the name says what is meant.
- :data:`Tokenizer`: a Hugging Face tokenizer (``PreTrainedTokenizerBase``).
- :data:`Batch`: a collated batch, a mapping from a name (``input_ids``, ``labels``, ...) to a
  tensor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Mapping

    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    # Not ``PreTrainedModel | torch.nn.Module``: nn.Module's ``__getattr__`` types every attribute
    # it does not declare as ``Tensor | Module``, so each ``model.config`` read would be an error.
    Model: TypeAlias = PreTrainedModel
    """A causal LM: a Hugging Face ``PreTrainedModel`` or a wrapper standing in for one (PEFT)."""

    Tokenizer: TypeAlias = PreTrainedTokenizerBase
    """A Hugging Face tokenizer."""

    Batch: TypeAlias = Mapping[str, torch.Tensor]
    """A collated batch: ``input_ids``, ``attention_mask``, ``labels`` and the like, as tensors."""
else:
    # At runtime nothing checks them: an annotation evaluated then (typing.get_type_hints, a
    # command line built from a signature) reads Any rather than failing on an unimported name.
    Model = Tokenizer = Batch = Any

__all__ = ["Batch", "Model", "Tokenizer"]
